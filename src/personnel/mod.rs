//! The personnel register (R-PERS-1 … R-PERS-5): the CEO's alone, behind a second factor.
//! Identity codes, bank accounts and salary data are encrypted with a key derived from the
//! application key and shown masked until revealed; every view is in the audit log; the
//! CEO enters a code again after a while away (`fresh`); the `personnel-retention` job
//! deletes what an ended employment no longer needs.

mod employees;
mod fresh;
mod held;
pub mod import;
mod pages;
mod retention;

pub use employees::ENTITY;
pub use fresh::Fresh;
pub use held::{Held, held_about};
pub use retention::job as retention_job;

use crate::web::{Access, Section};

pub fn sections() -> Vec<Section> {
    vec![
        Section::new(Access::Ceo)
            .get("/personnel", pages::list)
            .get(fresh::CODE_PAGE, fresh::code_form)
            .post(fresh::CODE_PAGE, fresh::code)
            .get("/personnel/new", pages::new_form)
            .post("/personnel/new", pages::create)
            .get("/personnel/{id}", pages::show)
            .get("/personnel/{id}/edit", pages::edit_form)
            .post("/personnel/{id}", pages::update)
            .post("/personnel/{id}/reveal", pages::reveal)
            .get("/personnel/{id}/erase", pages::erase_form)
            .post("/personnel/{id}/erase", pages::erase)
            .post("/personnel/payroll", pages::payroll_export),
    ]
}
