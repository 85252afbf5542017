//! The data subject's rights: the privacy and cookie notices and the record of processing
//! (generated from [`crate::registers`]), register extracts as PDF and JSON.

mod extract;
mod my_data;
mod notices;
mod pdf;
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
        Section::new(Access::CustomerRegister).post("/people/{id}/extract", send::person),
        Section::new(Access::Admin).get("/record", notices::record),
    ]
}
