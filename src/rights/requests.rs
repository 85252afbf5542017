//! Requests of data subjects (access, rectification, erasure, objection) and their
//! deadlines: one month from receipt (GDPR Art. 12(3)), counted in calendar months, so a
//! request of 31 January is due on the last day of February; extendable once, within the
//! first month, to at most three months from receipt.

use sqlx::PgConnection;
use time::{Date, Month, OffsetDateTime};
use uuid::Uuid;

use crate::{
    audit::{self, Actor, Event},
    domain::Email,
};

pub const KINDS: [&str; 4] = ["access", "rectification", "erasure", "objection"];
/// How staff may log a request that reached them.
pub const STAFF_CHANNELS: [&str; 3] = ["email", "phone", "letter"];
pub const ENTITY: &str = "subject_request";

/// The same day `months` calendar months later, or the month's last day if it is shorter.
pub fn months_after(day: Date, months: u8) -> Date {
    let index = day.month() as i32 - 1 + i32::from(months);
    let year = day.year() + index.div_euclid(12);
    let month = Month::try_from((index.rem_euclid(12) + 1) as u8).expect("a month");
    let last = month.length(year);
    Date::from_calendar_date(year, month, day.day().min(last)).expect("a valid day")
}

/// When a request received on `day` must be answered.
pub fn due_on(day: Date) -> Date {
    months_after(day, 1)
}

/// The latest an answer may be extended to (two more months).
pub fn latest_extension(received: Date) -> Date {
    months_after(received, 3)
}

/// Records a request received on `received_on`; returns its id.
pub async fn record(
    conn: &mut PgConnection,
    kind: &'static str,
    channel: &'static str,
    email: &Email,
    details: &str,
    received_on: Date,
    actor: &Actor,
) -> sqlx::Result<Uuid> {
    let id = Uuid::new_v4();
    sqlx::query!(
        "INSERT INTO subject_requests (id, kind, channel, email, details, received_on, due_on)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        id,
        kind,
        channel,
        email.as_str(),
        details,
        received_on,
        due_on(received_on),
    )
    .execute(&mut *conn)
    .await?;
    audit::record(
        conn,
        Event::new(
            actor,
            "subject_request.create",
            ENTITY,
            Some(id.to_string()),
        )
        .with_fields(&["kind", "channel", "email", "details", "received_on"]),
    )
    .await?;
    Ok(id)
}

/// Marks a request answered: `done` or `refused`, with what was done.
pub async fn close(
    conn: &mut PgConnection,
    id: Uuid,
    state: &'static str,
    outcome: &str,
    actor: &Actor,
    handled_by: Option<Uuid>,
) -> sqlx::Result<bool> {
    let closed = sqlx::query!(
        "UPDATE subject_requests SET state = $2, outcome = $3, handled_by = $4, closed_at = now()
         WHERE id = $1 AND state = 'open'",
        id,
        state,
        outcome,
        handled_by,
    )
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1;
    if closed {
        audit::record(
            conn,
            Event::new(actor, "subject_request.close", ENTITY, Some(id.to_string()))
                .with_fields(&["state", "outcome"]),
        )
        .await?;
    }
    Ok(closed)
}

/// One request as the queue shows it.
pub struct Request {
    pub id: Uuid,
    pub kind: String,
    pub channel: String,
    pub email: Option<String>,
    pub details: String,
    pub received_on: Date,
    pub due_on: Date,
    pub extended_to: Option<Date>,
    pub extension_reason: Option<String>,
    pub state: String,
    pub outcome: String,
    pub handled_by: Option<String>,
    pub closed_at: Option<OffsetDateTime>,
}

impl Request {
    /// The day the answer is due, extension included.
    pub fn deadline(&self) -> Date {
        self.extended_to.unwrap_or(self.due_on)
    }

    pub fn is_open(&self) -> bool {
        self.state == "open"
    }

    /// Open and past its deadline.
    pub fn overdue(&self, today: Date) -> bool {
        self.is_open() && self.deadline() < today
    }

    /// Open and due within a week.
    pub fn nearly_due(&self, today: Date) -> bool {
        self.is_open() && !self.overdue(today) && self.deadline() <= today + time::Duration::days(7)
    }

    /// An extension may be given once, within the first month.
    pub fn may_extend(&self, today: Date) -> bool {
        self.is_open() && self.extended_to.is_none() && today <= self.due_on
    }
}

/// Open requests first, by deadline; then the 100 most recently closed.
pub async fn list(conn: &mut PgConnection) -> sqlx::Result<Vec<Request>> {
    sqlx::query_as!(
        Request,
        r#"SELECT r.id, r.kind, r.channel, r.email, r.details, r.received_on, r.due_on,
                  r.extended_to, r.extension_reason, r.state, r.outcome,
                  u.name AS "handled_by?", r.closed_at
           FROM subject_requests r LEFT JOIN users u ON u.id = r.handled_by
           WHERE r.id IN (
               (SELECT id FROM subject_requests WHERE state = 'open')
               UNION ALL
               (SELECT id FROM subject_requests WHERE state <> 'open' ORDER BY closed_at DESC LIMIT 100))
           ORDER BY r.state <> 'open', coalesce(r.extended_to, r.due_on), r.closed_at DESC"#
    )
    .fetch_all(conn)
    .await
}

pub async fn find(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<Request>> {
    sqlx::query_as!(
        Request,
        r#"SELECT r.id, r.kind, r.channel, r.email, r.details, r.received_on, r.due_on,
                  r.extended_to, r.extension_reason, r.state, r.outcome,
                  u.name AS "handled_by?", r.closed_at
           FROM subject_requests r LEFT JOIN users u ON u.id = r.handled_by
           WHERE r.id = $1"#,
        id
    )
    .fetch_optional(conn)
    .await
}

/// (overdue, due within a week) among the open requests, for the start page.
pub async fn attention(conn: &mut PgConnection, today: Date) -> sqlx::Result<(i64, i64)> {
    let row = sqlx::query!(
        r#"SELECT count(*) FILTER (WHERE coalesce(extended_to, due_on) < $1) AS "overdue!",
                  count(*) FILTER (WHERE coalesce(extended_to, due_on) >= $1
                                     AND coalesce(extended_to, due_on) <= $1 + 7) AS "soon!"
           FROM subject_requests WHERE state = 'open'"#,
        today
    )
    .fetch_one(conn)
    .await?;
    Ok((row.overdue, row.soon))
}

/// Extends the deadline, once and within the first month, to at most three months from
/// receipt. Returns the subject's address to tell, or `None` if not allowed.
pub async fn extend(
    conn: &mut PgConnection,
    id: Uuid,
    to: Date,
    reason: &str,
    today: Date,
    actor: &Actor,
) -> sqlx::Result<Option<String>> {
    let email = sqlx::query_scalar!(
        "UPDATE subject_requests SET extended_to = $2, extension_reason = $3
         WHERE id = $1 AND state = 'open' AND extended_to IS NULL AND due_on >= $4
           AND $2 > due_on AND $2 <= (received_on + interval '3 months')::date
         RETURNING email",
        id,
        to,
        reason,
        today,
    )
    .fetch_optional(&mut *conn)
    .await?;
    let Some(email) = email else {
        return Ok(None);
    };
    audit::record(
        conn,
        Event::new(
            actor,
            "subject_request.extend",
            ENTITY,
            Some(id.to_string()),
        )
        .with_fields(&["extended_to", "extension_reason"]),
    )
    .await?;
    Ok(email)
}

/// After an erasure: the requests keep that they were made and answered, not by whom.
pub async fn forget(conn: &mut PgConnection, email: &Email) -> sqlx::Result<u64> {
    let forgotten = sqlx::query!(
        "UPDATE subject_requests SET email = NULL, details = '' WHERE lower(email) = lower($1)",
        email.as_str()
    )
    .execute(conn)
    .await?;
    Ok(forgotten.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn a_month_from_a_months_end_is_the_next_months_end() {
        assert_eq!(due_on(date!(2027 - 01 - 31)), date!(2027 - 02 - 28));
        assert_eq!(due_on(date!(2028 - 01 - 31)), date!(2028 - 02 - 29));
        assert_eq!(due_on(date!(2027 - 01 - 30)), date!(2027 - 02 - 28));
        assert_eq!(due_on(date!(2027 - 03 - 31)), date!(2027 - 04 - 30));
        assert_eq!(due_on(date!(2027 - 12 - 15)), date!(2028 - 01 - 15));
        assert_eq!(due_on(date!(2027 - 02 - 28)), date!(2027 - 03 - 28));
        assert_eq!(
            latest_extension(date!(2027 - 11 - 30)),
            date!(2028 - 02 - 29)
        );
    }
}
