//! The data subject's rights: the privacy and cookie notices and the record of processing
//! (generated from [`crate::registers`]), register extracts as PDF and JSON.

pub mod breaches;
mod erasure;
mod extract;
mod my_data;
mod notices;
mod pdf;
mod request_pages;
pub mod requests;
mod send;

use crate::web::{Access, Section};

pub fn sections() -> Vec<Section> {
    vec![
        Section::new(Access::Anyone)
            .get("/privacy", notices::privacy)
            .get("/cookies", notices::cookies)
            .get("/my-data", my_data::form)
            .post("/my-data", my_data::ask)
            .get("/my-data/{kind}/{token}", my_data::link_form)
            .post("/my-data/{kind}/{token}", my_data::link_submit),
        Section::new(Access::CustomerRegister)
            .post("/people/{id}/extract", send::person)
            .get("/requests", request_pages::list)
            .post("/requests", request_pages::create)
            .get("/requests/{id}", request_pages::show)
            .post("/requests/{id}/extend", request_pages::extend)
            .post("/requests/{id}/close", request_pages::close)
            .post("/requests/{id}/erase", request_pages::erase)
            .post("/requests/{id}/extract", request_pages::send_extract),
        Section::new(Access::Ceo).post("/personnel/{id}/extract", send::employee),
        Section::new(Access::Admin)
            .get("/record", notices::record)
            .get("/breaches", breaches::list)
            .post("/breaches", breaches::create)
            .get("/breaches/{id}", breaches::show)
            .post("/breaches/{id}", breaches::update),
    ]
}

/// Times the extract (the model, its PDF and its JSON) of one person with `entries`
/// logged communications, `rounds` times, inside a transaction that is rolled back.
/// Returns each round's duration.
pub async fn bench_extract(
    pool: &sqlx::PgPool,
    config: &crate::config::Config,
    entries: u32,
    rounds: u32,
) -> anyhow::Result<Vec<std::time::Duration>> {
    let mut tx = pool.begin().await?;
    let email = crate::customers::demo::person_with_history(&mut tx, entries).await?;
    let mut times = Vec::new();
    for _ in 0..rounds {
        let started = std::time::Instant::now();
        let extract = extract::for_email(&mut tx, config, &email, crate::web::Lang::En).await?;
        let pdf = pdf::render(&extract)?;
        let json = extract.json()?;
        times.push(started.elapsed());
        anyhow::ensure!(!pdf.is_empty() && !json.is_empty(), "an empty extract");
    }
    tx.rollback().await?;
    Ok(times)
}
