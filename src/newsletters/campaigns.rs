//! Campaigns: written in Markdown, rendered in the company's mail layout, sent to the
//! subscribers of chosen business areas and languages as one paced mailing.

use std::num::NonZeroU32;

use pulldown_cmark::{Event as Md, Options, Parser};
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use super::subscriptions;
use crate::{
    audit::{self, Actor, Event},
    config::Config,
    mail::{self, Mail, kinds::Newsletter},
    web::Lang,
};

/// The longest subject and body accepted.
pub const MAX_SUBJECT: usize = 200;
pub const MAX_BODY: usize = 100_000;

#[derive(Clone, Debug)]
pub struct Campaign {
    pub id: Uuid,
    pub subject: String,
    pub body: String,
    pub business_area_ids: Vec<Uuid>,
    pub languages: Vec<String>,
    pub per_second: Option<i32>,
    pub status: String,
    pub send_at: Option<OffsetDateTime>,
    pub batch_id: Option<Uuid>,
    pub recipients: Option<i32>,
    pub created_at: OffsetDateTime,
    pub started_at: Option<OffsetDateTime>,
}

/// A campaign as the form gives it, parsed.
#[derive(Clone, Debug)]
pub struct CampaignFields {
    pub subject: String,
    pub body: String,
    pub business_area_ids: Vec<Uuid>,
    pub languages: Vec<Lang>,
    pub per_second: Option<NonZeroU32>,
}

/// Markdown to HTML with any HTML in it left out, and to plain text (the Markdown itself,
/// which reads as text).
pub fn render(markdown: &str) -> (String, String) {
    let parser = Parser::new_ext(
        markdown,
        Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TABLES,
    )
    .filter(|e| !matches!(e, Md::Html(_) | Md::InlineHtml(_)))
    .map(|e| match e {
        // A link or image to a script is no link.
        Md::Start(pulldown_cmark::Tag::Link {
            link_type,
            dest_url,
            title,
            id,
        }) if !safe_url(&dest_url) => Md::Start(pulldown_cmark::Tag::Link {
            link_type,
            dest_url: "".into(),
            title,
            id,
        }),
        Md::Start(pulldown_cmark::Tag::Image {
            link_type,
            dest_url,
            title,
            id,
        }) if !safe_url(&dest_url) => Md::Start(pulldown_cmark::Tag::Image {
            link_type,
            dest_url: "".into(),
            title,
            id,
        }),
        other => other,
    });
    let mut html = String::new();
    pulldown_cmark::html::push_html(&mut html, parser);
    (html, markdown.trim().to_string())
}

fn safe_url(url: &str) -> bool {
    let lower = url.trim().to_ascii_lowercase();
    ["https://", "http://", "mailto:"]
        .iter()
        .any(|p| lower.starts_with(p))
        || !lower.contains(':')
}

/// A time as shown on the campaign's page: `2026-12-01 09:30 UTC`.
pub fn when(at: &OffsetDateTime) -> String {
    at.format(time::macros::format_description!(
        "[year]-[month]-[day] [hour]:[minute] UTC"
    ))
    .unwrap_or_default()
}

/// A subject is one line.
pub fn one_line(subject: &str) -> String {
    subject.split_whitespace().collect::<Vec<_>>().join(" ")
}

macro_rules! campaign_from_row {
    ($r:expr) => {
        Campaign {
            id: $r.id,
            subject: $r.subject,
            body: $r.body,
            business_area_ids: $r.business_area_ids,
            languages: $r.languages,
            per_second: $r.per_second,
            status: $r.status,
            send_at: $r.send_at,
            batch_id: $r.batch_id,
            recipients: $r.recipients,
            created_at: $r.created_at,
            started_at: $r.started_at,
        }
    };
}

pub async fn find(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<Campaign>> {
    let row = sqlx::query!(
        "SELECT id, subject, body, business_area_ids, languages, per_second, status, send_at,
                batch_id, recipients, created_at, started_at
         FROM newsletter_campaigns WHERE id = $1",
        id
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| campaign_from_row!(r)))
}

pub async fn list(conn: &mut PgConnection) -> sqlx::Result<Vec<Campaign>> {
    let rows = sqlx::query!(
        "SELECT id, subject, body, business_area_ids, languages, per_second, status, send_at,
                batch_id, recipients, created_at, started_at
         FROM newsletter_campaigns ORDER BY created_at DESC LIMIT 200"
    )
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|r| campaign_from_row!(r)).collect())
}

pub async fn create(
    conn: &mut PgConnection,
    fields: &CampaignFields,
    user: Uuid,
) -> sqlx::Result<Uuid> {
    let id = Uuid::new_v4();
    let languages: Vec<&str> = fields.languages.iter().map(|l| l.code()).collect();
    sqlx::query!(
        "INSERT INTO newsletter_campaigns (id, subject, body, business_area_ids, languages, per_second, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        id,
        fields.subject,
        fields.body,
        &fields.business_area_ids,
        &languages as &[&str],
        fields.per_second.map(|r| i32::try_from(r.get()).unwrap_or(i32::MAX)),
        user,
    )
    .execute(&mut *conn)
    .await?;
    audit::record(
        conn,
        Event::new(
            &Actor::User(user),
            "campaign.create",
            "campaign",
            Some(id.to_string()),
        )
        .with_fields(&[
            "subject",
            "body",
            "business_areas",
            "languages",
            "per_second",
        ]),
    )
    .await?;
    Ok(id)
}

/// The subscribers the campaign goes to: subscribed, in one of its languages, interested
/// in one of its areas (or in every area) or at a company of one, with an address that
/// is confirmed and not bouncing.
pub async fn audience(
    conn: &mut PgConnection,
    campaign: &Campaign,
) -> sqlx::Result<Vec<Recipient>> {
    sqlx::query_as!(
        Recipient,
        r#"SELECT c.id, c.email, c.language
           FROM contacts c JOIN companies co ON co.id = c.company_id
           WHERE c.newsletter AND c.status <> 'quarantine' AND c.email_pending_since IS NULL
             AND (cardinality($1::text[]) = 0 OR c.language = ANY($1))
             AND (cardinality($2::uuid[]) = 0
                  OR co.business_area_id = ANY($2)
                  OR EXISTS (SELECT 1 FROM newsletter_interests i
                             WHERE i.contact_id = c.id AND i.business_area_id = ANY($2))
                  OR NOT EXISTS (SELECT 1 FROM newsletter_interests i WHERE i.contact_id = c.id))
             AND NOT EXISTS (SELECT 1 FROM mail_bounces b WHERE b.contact_id = c.id)
           ORDER BY c.id"#,
        &campaign.languages,
        &campaign.business_area_ids,
    )
    .fetch_all(conn)
    .await
}

pub struct Recipient {
    pub id: Uuid,
    pub email: String,
    pub language: String,
}

/// The mail one recipient gets.
pub fn compose(
    config: &Config,
    campaign: &Campaign,
    html: &str,
    text: &str,
    recipient: &str,
    lang: Lang,
    unsubscribe_link: &str,
) -> askama::Result<Mail> {
    let kind = Newsletter {
        subject: one_line(&campaign.subject),
        body_html: html.to_string(),
        body_text: text.to_string(),
        unsubscribe_link: unsubscribe_link.to_string(),
    };
    let mut mail = Mail::compose(config, recipient, lang, &kind)?;
    let mailto = format!("mailto:{}?subject=unsubscribe", config.info_address.email);
    mail.headers = vec![
        (
            "List-Unsubscribe".to_string(),
            format!("<{unsubscribe_link}>, <{mailto}>"),
        ),
        (
            "List-Unsubscribe-Post".to_string(),
            "List-Unsubscribe=One-Click".to_string(),
        ),
    ];
    Ok(mail)
}

/// Sets a time to send, or clears it (`None`).
pub async fn schedule(
    conn: &mut PgConnection,
    id: Uuid,
    at: Option<OffsetDateTime>,
    actor: &Actor,
) -> sqlx::Result<bool> {
    let status = if at.is_some() { "scheduled" } else { "draft" };
    let changed = sqlx::query!(
        "UPDATE newsletter_campaigns SET status = $2, send_at = $3
         WHERE id = $1 AND status IN ('draft', 'scheduled')",
        id,
        status,
        at
    )
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if changed > 0 {
        audit::record(
            conn,
            Event::new(actor, "campaign.schedule", "campaign", Some(id.to_string()))
                .with_fields(&["send_at"]),
        )
        .await?;
    }
    Ok(changed > 0)
}

/// Starts sending, in the caller's transaction: the mailing, one delivery row and one
/// queued mail per recipient, all at once or none. Returns how many, or `None` if the
/// campaign was already started (of two simultaneous starts, one does it).
pub async fn start(
    conn: &mut PgConnection,
    config: &Config,
    id: Uuid,
    actor: &Actor,
) -> anyhow::Result<Option<usize>> {
    let claimed = sqlx::query_scalar!(
        "UPDATE newsletter_campaigns SET status = 'sending', started_at = now()
         WHERE id = $1 AND status IN ('draft', 'scheduled') RETURNING id",
        id
    )
    .fetch_optional(&mut *conn)
    .await?;
    if claimed.is_none() {
        return Ok(None);
    }
    let campaign = find(conn, id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("campaign {id} gone while starting"))?;
    let rate = campaign
        .per_second
        .and_then(|r| u32::try_from(r).ok())
        .and_then(NonZeroU32::new);
    let batch = mail::new_batch(conn, "newsletter", rate).await?;
    let recipients = audience(conn, &campaign).await?;
    let (html, text) = render(&campaign.body);
    // A chunk at a time, so that the mails of a large audience are never all in memory.
    for chunk in recipients.chunks(1000) {
        let ids: Vec<Uuid> = chunk.iter().map(|r| r.id).collect();
        let links = subscriptions::unsubscribe_links(conn, config, &ids).await?;
        let mut mails = Vec::with_capacity(chunk.len());
        for (r, link) in chunk.iter().zip(&links) {
            let lang = Lang::parse(&r.language).unwrap_or(Lang::En);
            mails.push(
                compose(config, &campaign, &html, &text, &r.email, lang, link)?
                    .about(r.id)
                    .in_batch(batch),
            );
        }
        let mail_ids = mail::enqueue_many(conn, &mails).await?;
        sqlx::query!(
            "INSERT INTO newsletter_deliveries (campaign_id, contact_id, mail_id)
             SELECT $1, c, m FROM unnest($2::uuid[], $3::uuid[]) AS t(c, m)",
            id,
            &ids,
            &mail_ids
        )
        .execute(&mut *conn)
        .await?;
    }
    sqlx::query!(
        "UPDATE newsletter_campaigns SET batch_id = $2, recipients = $3 WHERE id = $1",
        id,
        batch,
        recipients.len() as i32
    )
    .execute(&mut *conn)
    .await?;
    audit::record(
        conn,
        Event::new(actor, "campaign.send", "campaign", Some(id.to_string()))
            .with_fields(&["status", "recipients"]),
    )
    .await?;
    Ok(Some(recipients.len()))
}

/// Pauses or resumes a campaign being sent.
pub async fn pause(
    conn: &mut PgConnection,
    campaign: &Campaign,
    paused: bool,
    actor: &Actor,
) -> sqlx::Result<()> {
    let Some(batch) = campaign.batch_id else {
        return Ok(());
    };
    mail::pause_batch(conn, batch, paused).await?;
    let action = if paused {
        "campaign.pause"
    } else {
        "campaign.resume"
    };
    audit::record(
        conn,
        Event::new(actor, action, "campaign", Some(campaign.id.to_string())),
    )
    .await
}

/// Cancels a campaign: what was not yet handed to the mail server stays unsent. A
/// scheduled one is not sent at all.
pub async fn cancel(
    conn: &mut PgConnection,
    campaign: &Campaign,
    actor: &Actor,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE newsletter_campaigns SET status = 'cancelled' WHERE id = $1 AND status <> 'cancelled'",
        campaign.id
    )
    .execute(&mut *conn)
    .await?;
    if let Some(batch) = campaign.batch_id {
        withdraw(conn, &[batch], None).await?;
    }
    audit::record(
        conn,
        Event::new(
            actor,
            "campaign.cancel",
            "campaign",
            Some(campaign.id.to_string()),
        )
        .with_fields(&["status"]),
    )
    .await
}

/// Takes back the campaigns' mails not yet handed over (to one person, or to everyone),
/// marking their deliveries stopped. One handed over meanwhile is sent, and its delivery
/// row then says so.
async fn withdraw(
    conn: &mut PgConnection,
    batches: &[Uuid],
    contact_id: Option<Uuid>,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE newsletter_deliveries d SET status = 'stopped'
         FROM mail_outbox o
         WHERE o.id = d.mail_id AND o.batch_id = ANY($1) AND ($2::uuid IS NULL OR o.contact_id = $2)
           AND o.status IN ('queued', 'sending') AND o.handed_at IS NULL",
        batches,
        contact_id
    )
    .execute(&mut *conn)
    .await?;
    mail::withdraw(conn, batches, contact_id).await?;
    Ok(())
}

/// Someone unsubscribed: nothing more of any campaign under way goes to them.
pub async fn stop_for(conn: &mut PgConnection, contact_id: Uuid) -> sqlx::Result<()> {
    let batches = sqlx::query_scalar!(
        r#"SELECT DISTINCT c.batch_id AS "batch_id!" FROM newsletter_deliveries d
           JOIN newsletter_campaigns c ON c.id = d.campaign_id
           WHERE d.contact_id = $1 AND d.status = 'queued' AND c.batch_id IS NOT NULL"#,
        contact_id
    )
    .fetch_all(&mut *conn)
    .await?;
    if batches.is_empty() {
        return Ok(());
    }
    withdraw(conn, &batches, Some(contact_id)).await
}

/// Campaigns whose set time has come: started, each in its own transaction.
pub async fn start_due(
    pool: &sqlx::PgPool,
    config: &Config,
    at: OffsetDateTime,
) -> anyhow::Result<usize> {
    let due = sqlx::query_scalar!(
        "SELECT id FROM newsletter_campaigns WHERE status = 'scheduled' AND send_at <= $1
         ORDER BY send_at",
        at
    )
    .fetch_all(pool)
    .await?;
    let mut started = 0;
    for id in due {
        let mut tx = pool.begin().await?;
        if start(&mut tx, config, id, &Actor::System("newsletter-schedule"))
            .await?
            .is_some()
        {
            started += 1;
        }
        tx.commit().await?;
    }
    Ok(started)
}

/// A campaign in a person's newsletter history.
#[derive(Debug, serde::Serialize)]
pub struct Delivered {
    pub campaign_id: Uuid,
    pub subject: String,
    pub status: String,
    #[serde(with = "time::serde::rfc3339")]
    pub queued_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub sent_at: Option<OffsetDateTime>,
}

pub async fn delivered_to(
    conn: &mut PgConnection,
    contact_id: Uuid,
) -> sqlx::Result<Vec<Delivered>> {
    sqlx::query_as!(
        Delivered,
        r#"SELECT d.campaign_id, c.subject, d.status, d.created_at AS queued_at, d.sent_at
           FROM newsletter_deliveries d JOIN newsletter_campaigns c ON c.id = d.campaign_id
           WHERE d.contact_id = $1 ORDER BY d.created_at"#,
        contact_id
    )
    .fetch_all(conn)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_keeps_no_markup_of_its_own() {
        let (html, text) = render(
            "# News\n\n**Bold** <script>alert(1)</script> <b onclick=x>hi</b>\n\n<iframe src=x></iframe>\n\n[x](javascript:alert(1)) [ok](https://btb.fi)",
        );
        assert!(html.contains("<h1>News</h1>") && html.contains("<strong>Bold</strong>"));
        for bad in ["<script", "<b ", "<iframe", "javascript:"] {
            assert!(!html.contains(bad), "{bad} in {html}");
        }
        assert!(html.contains(r#"href="https://btb.fi""#));
        assert!(text.starts_with("# News"));
    }
}
