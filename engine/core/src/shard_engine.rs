//! An engine that is one shard of several ([`Engine::new_shard`]): its hub runs elsewhere.
//!
//! What an engine with the hub inside ([`Engine::new`]) hands the hub at once goes out as
//! [`Output::Hub`](crate::Output::Hub); the hub's answers come back as [`Input::Hub`](crate::Input::Hub), in
//! the order the hub made them (one FIFO link per direction per shard). The hub's owner
//! keeps its wall clock, reloads it before the shards (then syncs it), runs its timers and
//! serves the views (queue lines, the board, agents' states) straight from the hub.

use crate::config::EngineConfig;
use crate::engine::Engine;
use ivr_menus::Menus;
use std::sync::Arc;

impl Engine {
    /// The engine of shard `config.shard`, whose hub runs elsewhere: what it tells the hub
    /// comes out as [`Output::Hub`](crate::Output::Hub), the hub's answers go in as
    /// [`Input::Hub`](crate::Input::Hub). Its calls' handles carry its index, and the
    /// Call-IDs of the calls it places are steered to route back to it.
    pub fn new_shard(config: EngineConfig, menus: Arc<Menus>) -> Engine {
        let keys = crate::srtp::KeyGen::new(&config.srtp_seed);
        Engine::with_queueing(config, menus, keys, crate::queued::Queueing::external())
    }
}
