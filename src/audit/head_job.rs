//! Once a day the head of the chain (its newest row and hash) is written to the log and
//! mailed to the info address. Removing the newest rows leaves a chain that is whole in
//! itself; checked against a head kept outside (`audit verify --head`), it is not.

use std::time::Duration;

use askama::Template;
use sqlx::PgPool;
use time::OffsetDateTime;

use super::{Actor, Event, head, record, seal};
use crate::{
    config::Config,
    jobs::{Job, JobFuture},
    mail::{self, Mail},
    web::{Lang, Tr},
};

#[derive(Template)]
#[template(
    source = "<pre style=\"white-space: pre-wrap\">{{ text }}</pre>",
    ext = "html"
)]
struct HeadHtml<'a> {
    text: &'a str,
}

pub fn job() -> Job {
    Job {
        name: "audit-head",
        every: Duration::from_secs(60 * 60),
        run,
    }
}

fn run<'c>(pool: &'c PgPool, at: OffsetDateTime, config: &'c Config) -> JobFuture<'c> {
    Box::pin(async move {
        seal(pool).await?;
        let mut tx = pool.begin().await?;
        let today = at.date().midnight().assume_utc();
        let sent_today = sqlx::query_scalar!(
            r#"SELECT EXISTS (SELECT 1 FROM audit_log WHERE action = 'audit.head' AND at >= $1) AS "sent!""#,
            today
        )
        .fetch_one(&mut *tx)
        .await?;
        let Some(head) = head(&mut tx).await? else {
            return Ok("the audit log is empty".into());
        };
        if sent_today {
            return Ok("today's head was sent already".into());
        }
        let hash = hex::encode(&head.hash);
        record(
            &mut tx,
            Event::new(
                &Actor::System("audit-head"),
                "audit.head",
                "audit_log",
                Some(format!("{}:{hash}", head.seq)),
            ),
        )
        .await?;
        // The company's staff speak Swedish: the info address gets Swedish.
        let t = Tr(Lang::Sv);
        let reaches = t
            .with("mail.audit_head.reaches", "row", head.seq)
            .replace("{day}", &crate::web::day(&at));
        let keep = t.get("mail.audit_head.keep");
        let text = format!(
            "{reaches}\n\n{hash}\n\n{keep}\n\n    gdpr-register audit verify --head {hash}\n"
        );
        let mail = Mail {
            recipient: config.info_address.email.to_string(),
            language: Lang::Sv,
            kind: "audit_head",
            subject: t.with("mail.audit_head.subject", "company", &config.company_name),
            html: HeadHtml { text: &text }.render()?,
            text,
            headers: Vec::new(),
            contact_id: None,
        };
        mail::enqueue(&mut tx, &mail).await?;
        tx.commit().await?;
        Ok(format!("the head (row {}) was logged and mailed", head.seq))
    })
}
