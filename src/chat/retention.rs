//! `chat-retention`: closes conversations the visitor has left (their transcript is
//! mailed as for any closing), and, when `CHAT_RETENTION_DAYS` is set, deletes
//! conversations that ended longer ago than that (R-CHAT-6: otherwise they are kept
//! until deleted).

use std::time::Duration;

use sqlx::PgPool;
use time::OffsetDateTime;

use super::store::{self, ENTITY};
use crate::{
    audit::{self, Actor, Event},
    config::Config,
    jobs::{BATCH, Job, JobFuture},
};

const ACTOR: Actor = Actor::System("chat-retention");
/// A conversation without a message for this long is closed.
pub const IDLE: time::Duration = time::Duration::hours(2);

pub fn job() -> Job {
    Job {
        name: "chat-retention",
        every: Duration::from_secs(10 * 60),
        run,
    }
}

fn run<'c>(pool: &'c PgPool, at: OffsetDateTime, config: &'c Config) -> JobFuture<'c> {
    Box::pin(async move {
        let mut closed = 0;
        loop {
            let mut tx = pool.begin().await?;
            let idle = store::idle_since(&mut tx, at - IDLE, BATCH).await?;
            for id in &idle {
                if store::close(&mut tx, config, *id, &ACTOR).await? {
                    closed += 1;
                }
            }
            tx.commit().await?;
            if (idle.len() as i64) < BATCH {
                break;
            }
        }
        let mut deleted = 0;
        if let Some(days) = config.chat_retention_days {
            // A conversation that ended exactly `days` days ago is kept; older ones go.
            let before = at - time::Duration::days(days.into());
            loop {
                let mut tx = pool.begin().await?;
                let ids = store::delete_closed_before(&mut tx, before, BATCH).await?;
                for id in &ids {
                    let event = Event::new(&ACTOR, "chat.delete", ENTITY, Some(id.to_string()));
                    audit::record(&mut tx, event).await?;
                }
                tx.commit().await?;
                deleted += ids.len();
                if (ids.len() as i64) < BATCH {
                    break;
                }
            }
        }
        Ok(format!(
            "closed {closed} idle chats, deleted {deleted} chats"
        ))
    })
}
