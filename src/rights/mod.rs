//! The data subject's rights: the privacy and cookie notices and the record of processing
//! (generated from [`crate::registers`]), register extracts as PDF and JSON.

mod notices;

use crate::web::{Access, Section};

pub fn sections() -> Vec<Section> {
    vec![
        Section::new(Access::Anyone)
            .get("/privacy", notices::privacy)
            .get("/cookies", notices::cookies),
        Section::new(Access::Admin).get("/record", notices::record),
    ]
}
