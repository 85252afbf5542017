//! gdpr-register: the register a small company keeps of the people it holds data about.

pub mod audit;
pub mod auth;
pub mod backup;
pub mod chat;
pub mod cli;
pub mod config;
pub mod contact;
pub mod customers;
pub mod dashboard;
pub mod domain;
pub mod error;
pub mod jobs;
pub mod keys;
pub mod local_pg;
pub mod mail;
pub mod metrics;
pub mod newsletters;
pub mod personnel;
pub mod registers;
pub mod rights;
pub mod spreadsheet;
pub mod startup;
pub mod state;
pub mod tokens;
pub mod users;
pub mod web;
