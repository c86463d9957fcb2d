//! An engine that is one shard of several ([`Engine::new_shard`]): its hub runs elsewhere,
//! and SIP for another shard's Call-ID is handed over rather than served.
//!
//! What an engine with the hub inside ([`Engine::new`]) hands the hub at once goes out as
//! [`Output::Hub`]; the hub's answers come back as [`Input::Hub`](crate::Input::Hub), in
//! the order the hub made them (one FIFO link per direction per shard). The hub's owner
//! keeps its wall clock, reloads it before the shards (then syncs it), runs its timers and
//! serves the views (queue lines, the board, agents' states) straight from the hub.

use crate::config::EngineConfig;
use crate::engine::Engine;
use crate::io::Output;
use ivr_menus::Menus;
use ivr_sip::Transport;
use ivr_sip::message::{CoreHeaders, Message};
use std::net::SocketAddr;
use std::sync::Arc;

impl Engine {
    /// The engine of shard `config.shard`, whose hub runs elsewhere: what it tells the hub
    /// comes out as [`Output::Hub`], the hub's answers go in as
    /// [`Input::Hub`](crate::Input::Hub). Its calls' handles carry its index, and the
    /// Call-IDs of the calls it places are steered to route back to it.
    pub fn new_shard(config: EngineConfig, menus: Arc<Menus>) -> Engine {
        let keys = crate::srtp::KeyGen::new(&config.srtp_seed);
        Engine::with_queueing(config, menus, keys, crate::queued::Queueing::external())
    }

    /// The safety net behind the router (RFC 3261 §8.1.1.4: a dialog's messages share its
    /// Call-ID): a parsed message whose Call-ID belongs to another shard is handed over as
    /// it came ([`Output::Handoff`]) and nothing else is done with it. Returns whether it
    /// was. One shard owns everything.
    pub(crate) fn handoff(
        &mut self,
        msg: &Message,
        transport: Transport,
        from: SocketAddr,
        data: &[u8],
    ) -> bool {
        let spec = self.ctx.config.shard;
        if spec.count <= 1 {
            return false;
        }
        let call_id = match msg {
            Message::Request(r) => r.call_id(),
            Message::Response(r) => r.call_id(),
        };
        // A message without a (single) Call-ID is refused by its transaction layer here.
        let Ok(call_id) = call_id else {
            return false;
        };
        let shard = spec.shard_of(call_id);
        if shard == spec.index {
            return false;
        }
        self.ctx.outputs.push_back(Output::Handoff {
            shard,
            transport,
            from,
            data: data.to_vec(),
        });
        true
    }
}

#[cfg(test)]
mod tests {
    use crate::Engine;
    use crate::hub::Hub;

    /// Shards and their hub run on threads of their own (step 4): both must be `Send`.
    #[test]
    fn engines_and_the_hub_can_move_to_their_threads() {
        fn assert_send<T: Send>() {}
        assert_send::<Engine>();
        assert_send::<Hub>();
        assert_send::<crate::call_slots::CallSlots>();
    }
}
