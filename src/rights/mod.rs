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
            .post("/requests/{id}/erase", request_pages::erase),
        Section::new(Access::Ceo).post("/personnel/{id}/extract", send::employee),
        Section::new(Access::Admin)
            .get("/record", notices::record)
            .get("/breaches", breaches::list)
            .post("/breaches", breaches::create)
            .get("/breaches/{id}", breaches::show)
            .post("/breaches/{id}", breaches::update),
    ]
}
