//! The IVR engine's driver: the only crate that does I/O.
//!
//! It binds the SIP sockets (UDP and TCP on one address) and one RTP/RTCP socket pair per
//! call, feeds everything to one [`ivr_engine::Engine`] loop, sends what it asks, and sleeps
//! until its next deadline. Configs are loaded here and compiled by `ivr-menus`.

pub mod api;
pub mod builtin;
pub mod clock;
pub mod comments;
pub mod config;
pub mod conns;
pub mod desk;
pub mod driver;
pub mod http;
pub mod lateness;
pub mod limits;
pub mod mail;
pub mod outbox;
pub mod page;
pub mod ports;
pub mod queue_log;
pub mod record_queue;
pub mod recorder;
pub mod reload;
pub mod reports;
pub mod resolve;
pub mod retention;
pub mod signin;
pub mod staff;
pub mod status;
pub mod terminal;
pub mod tls;
mod tls_sip;
pub mod web;
pub mod webhook;
