use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Query, State};
use serde::Deserialize;
use time::{
    Date, OffsetDateTime, format_description::well_known::Rfc3339, macros::format_description,
};

use crate::{error::AppResult, state::AppState, web::Layout};

const PAGE: i64 = 100;

#[derive(Debug, Default, Deserialize)]
pub struct Filter {
    #[serde(default)]
    action: String,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    entity_id: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    /// Keyset paging: rows older than this id.
    before: Option<i64>,
}

pub struct Entry {
    pub id: i64,
    pub at: String,
    /// The instant as people read it, in UTC.
    pub at_shown: String,
    pub actor: String,
    pub action: String,
    pub entity: String,
    pub entity_id: String,
    pub fields: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "audit/list.html")]
pub struct ListPage {
    layout: Layout,
    /// Where this list lives: `/audit`, or the CEO's `/personnel/audit`.
    path: &'static str,
    filter: Filter,
    entries: Vec<Entry>,
    /// The query string of the next (older) page, if there is one.
    older: Option<String>,
    bad_date: bool,
}

fn parse_date(value: &str) -> Result<Option<Date>, &'static str> {
    crate::domain::optional(value, crate::web::form::parse_day)
}

/// The administrator's log: everything but the personnel register, whose rows only the
/// CEO sees (R-PERS-3).
pub async fn list(
    State(state): State<AppState>,
    layout: Layout,
    Query(filter): Query<Filter>,
) -> AppResult<ListPage> {
    entries(state, layout, filter, "/audit", false).await
}

/// The CEO's log: the personnel register's rows alone, reads among them.
pub async fn personnel(
    _: crate::personnel::Fresh,
    State(state): State<AppState>,
    layout: Layout,
    Query(filter): Query<Filter>,
) -> AppResult<ListPage> {
    entries(state, layout, filter, "/personnel/audit", true).await
}

async fn entries(
    state: AppState,
    layout: Layout,
    filter: Filter,
    path: &'static str,
    personnel: bool,
) -> AppResult<ListPage> {
    let (from, to) = match (parse_date(&filter.from), parse_date(&filter.to)) {
        (Ok(from), Ok(to)) => (from, to),
        _ => {
            return Ok(ListPage {
                layout,
                path,
                filter,
                entries: Vec::new(),
                older: None,
                bad_date: true,
            });
        }
    };
    let from = from.map(|d| d.midnight().assume_utc());
    let to = to
        .and_then(|d| d.next_day())
        .map(|d| d.midnight().assume_utc());
    let mut conn = state.pool.acquire().await?;
    let rows = sqlx::query!(
        r#"SELECT a.id, a.at, a.actor_kind, a.actor_id, a.action, a.entity, a.entity_id, a.fields,
                  u.name AS "actor_name?"
           FROM audit_log a
           LEFT JOIN users u ON a.actor_kind = 'user' AND u.id::text = a.actor_id
           WHERE ($1 = '' OR a.action LIKE $1 || '%')
             AND ($2 = '' OR a.actor_id = $2 OR u.name ILIKE '%' || $2 || '%' OR u.email ILIKE $2)
             AND ($3 = '' OR a.entity_id = $3)
             AND ($4::timestamptz IS NULL OR a.at >= $4)
             AND ($5::timestamptz IS NULL OR a.at < $5)
             AND ($6::bigint IS NULL OR a.id < $6)
             AND (a.entity = $8) = $9
           ORDER BY a.id DESC
           LIMIT $7"#,
        filter.action.trim(),
        filter.actor.trim(),
        filter.entity_id.trim(),
        from as Option<OffsetDateTime>,
        to as Option<OffsetDateTime>,
        filter.before,
        PAGE + 1,
        crate::personnel::ENTITY,
        personnel,
    )
    .fetch_all(&mut *conn)
    .await?;
    let more = rows.len() as i64 > PAGE;
    let t = layout.t;
    let entries: Vec<Entry> = rows
        .into_iter()
        .take(PAGE as usize)
        .map(|r| Entry {
            id: r.id,
            at: r.at.format(&Rfc3339).unwrap_or_default(),
            at_shown: r
                .at
                .format(format_description!(
                    "[year]-[month]-[day] [hour]:[minute]:[second]"
                ))
                .unwrap_or_default(),
            actor: match (r.actor_kind.as_str(), r.actor_name) {
                ("user", Some(name)) => name,
                (kind, _) => {
                    let who = t.named("audit.actor.", kind);
                    match r.actor_id {
                        Some(id) => format!("{who}: {id}"),
                        None => who,
                    }
                }
            },
            action: r.action,
            entity: r.entity,
            entity_id: r.entity_id.unwrap_or_default(),
            fields: r.fields.join(", "),
        })
        .collect();
    let older = match (more, entries.last()) {
        (true, Some(last)) => Some(
            serde_urlencoded::to_string([
                ("action", filter.action.as_str()),
                ("actor", filter.actor.as_str()),
                ("entity_id", filter.entity_id.as_str()),
                ("from", filter.from.as_str()),
                ("to", filter.to.as_str()),
                ("before", &last.id.to_string()),
            ])
            .unwrap_or_default(),
        ),
        _ => None,
    };
    Ok(ListPage {
        layout,
        path,
        filter,
        entries,
        older,
        bad_date: false,
    })
}
