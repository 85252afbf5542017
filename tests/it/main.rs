//! The one integration test binary: every test drives the application over HTTP (or its
//! command line) against a private PostgreSQL and a real SMTP listener.

mod access;
mod accessibility;
mod attacks;
mod audit_log;
mod auth;
mod backup;
mod browser;
mod chat;
mod cli;
mod contact;
mod customers;
mod embedded;
mod house;
mod mail;
mod newsletters;
mod ops;
mod pages;
mod personnel;
mod rights;
mod second_factor;
mod support;
mod transfer;
mod users;
