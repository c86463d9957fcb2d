//! Helpers for the end-to-end suites: the real `ivr` binary, SIPp, and a scripted caller
//! for whole calls in virtual time.
//!
//! Every peer here sends to 127.0.0.1 only.

pub mod caller;
pub mod dns;
pub mod http;
pub mod kamailio;
pub mod pg;
pub mod process;
pub mod sharded;
pub mod sipp;
pub mod smtp;
pub mod speech;
pub mod udp_call;
