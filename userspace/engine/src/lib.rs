//! The DHCP server's decisions, sans-IO: a datagram, where it came from and `now` go in; a reply
//! (written into the caller's buffer, with where to send it and whether it must wait for the
//! lease log) and lease records to persist come out. No sockets, no clock, no files: the same
//! engine runs under std sockets, io_uring or AF_XDP, and under fuzzers and property tests.
//!
//! State is split for lock-freedom: [`Shared`] holds the immutable policy and the address pools
//! (atomic bitmaps any shard may claim from); each worker owns one [`Shard`] with its clients'
//! leases. Packets are steered to shards by [`provd_common::shard_of`] on chaddr, so a client
//! always meets the shard that holds its lease.

mod counters;
mod limits;
mod live;
mod options;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;

use provd_config::{ClassId, Policy, Reservation};
use provd_dhcp::relay::RelayAgentInfo;
use provd_dhcp::{
    BROADCAST_FLAG, Header, Message, MessageType, MessageWriter, Op, RequestKind, code,
};
use provd_lease::{Binding, ClientKey, Lease, LeaseRecord, LeaseState, LeaseTable, PoolBitmap};

pub use counters::{Counters, Drop, Nak, Snapshot};
pub use live::LiveReservations;
pub use options::OptionError;

/// `Lease::pool` of an address that belongs to no pool (a reservation outside the pools, a
/// quarantined address's holder): such addresses are never released into a pool.
pub const NO_POOL: u16 = u16::MAX;
/// How often a shard sweeps its table for ended offers and leases.
const SWEEP_EVERY_SECS: u32 = 5;
/// RFC 2131's default datagram limit minus IP and UDP headers.
const DEFAULT_MAX_MESSAGE: usize = 576 - 28;

/// Why the engine could not be set up from a policy.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    #[error(transparent)]
    Options(#[from] OptionError),
    #[error("pool {id} ({start}-{end}): {reason}")]
    Pool {
        id: u16,
        start: Ipv4Addr,
        end: Ipv4Addr,
        reason: String,
    },
}

/// Policy and pools, shared read-only (pools through atomics) by every shard.
#[derive(Debug)]
pub struct Shared {
    pub policy: Policy,
    pools: Vec<PoolBitmap>,
    /// (first, last, id) sorted by first, for address → pool lookups
    ranges: Vec<(u32, u32, u16)>,
    blobs: options::Blobs,
    /// Reservations made at run time (the store's), beside the config's; shared across
    /// reloads.
    pub live: Arc<LiveReservations>,
}

/// What replaying the lease log restored.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RestoreStats {
    pub bound: u64,
    pub remembered: u64,
    pub forgotten: u64,
    pub conflicts: u64,
}

impl Shared {
    pub fn new(policy: Policy) -> Result<Arc<Self>, EngineError> {
        Self::with_live(policy, Arc::default())
    }

    /// As [`Shared::new`], keeping the run-time reservations of `live` (a reload).
    pub fn with_live(
        policy: Policy,
        live: Arc<LiveReservations>,
    ) -> Result<Arc<Self>, EngineError> {
        let mut pools = Vec::new();
        for net in &policy.networks {
            for subnet in &net.subnets {
                for pool in &subnet.pools {
                    debug_assert_eq!(usize::from(pool.id), pools.len(), "pool ids are dense");
                    let bm =
                        PoolBitmap::new(pool.start, pool.end).map_err(|e| EngineError::Pool {
                            id: pool.id,
                            start: pool.start,
                            end: pool.end,
                            reason: e.to_string(),
                        })?;
                    pools.push(bm);
                }
            }
        }
        let mut ranges: Vec<_> = pools
            .iter()
            .enumerate()
            .map(|(id, p)| (u32::from(p.first()), u32::from(p.last()), id as u16))
            .collect();
        ranges.sort_unstable();
        let blobs = options::Blobs::build(&policy)?;
        let shared = Shared {
            policy,
            pools,
            ranges,
            blobs,
            live,
        };
        // Reserved addresses inside a pool are claimed for good, so no allocation returns them.
        for r in &shared.policy.reservations {
            if let Some(id) = shared.pool_of(r.address) {
                shared.pools[usize::from(id)].try_claim(r.address);
            }
        }
        Ok(Arc::new(shared))
    }

    /// The pool an address belongs to, if any.
    pub fn pool_of(&self, addr: Ipv4Addr) -> Option<u16> {
        let a = u32::from(addr);
        let i = self.ranges.partition_point(|r| r.0 <= a);
        let &(first, last, id) = self.ranges.get(i.checked_sub(1)?)?;
        (first..=last).contains(&a).then_some(id)
    }

    pub fn pool(&self, id: u16) -> Option<&PoolBitmap> {
        self.pools.get(usize::from(id))
    }

    /// [`Shared::accounting_pool`] as an option.
    fn accounting_pool_of(&self, addr: Ipv4Addr) -> Option<u16> {
        Some(self.accounting_pool(addr)).filter(|&p| p != NO_POOL)
    }

    /// The pool a lease should be accounted to: none for reserved addresses.
    fn accounting_pool(&self, addr: Ipv4Addr) -> u16 {
        if self.policy.is_reserved(addr) {
            NO_POOL
        } else {
            self.pool_of(addr).unwrap_or(NO_POOL)
        }
    }

    fn release(&self, lease: &Lease) {
        if let Some(p) = self.pool(lease.pool) {
            p.release(lease.addr);
        }
    }

    /// Distributes replayed records to `shards` tables, claiming the addresses of live leases.
    /// Leases past their end stay remembered (so the client gets its address back) until the
    /// policy's forget window; two live leases on one address keep the newer and count a conflict.
    pub fn restore(
        &self,
        mut records: Vec<LeaseRecord>,
        now: u32,
        shards: u32,
    ) -> (Vec<LeaseTable>, RestoreStats) {
        let shards = shards.max(1);
        let per = records.len() / shards as usize + 1;
        let mut tables: Vec<_> = (0..shards)
            .map(|_| LeaseTable::with_capacity(per))
            .collect();
        let mut stats = RestoreStats::default();
        let forget_before = now.saturating_sub(self.policy.server.forget_after_secs);
        // Newest first, so a conflict keeps the lease acknowledged last.
        records.sort_unstable_by_key(|r| std::cmp::Reverse(r.seq));
        for LeaseRecord { key, mut lease, .. } in records {
            lease.pool = self.accounting_pool(lease.addr);
            let live = lease.state == LeaseState::Bound && lease.expires_at > now;
            if live {
                let claimed = match self.pool(lease.pool) {
                    Some(p) => p.try_claim(lease.addr),
                    None => true,
                };
                if claimed {
                    stats.bound += 1;
                } else {
                    stats.conflicts += 1;
                    lease.state = LeaseState::Expired;
                }
            } else if lease.expires_at < forget_before {
                stats.forgotten += 1;
                continue;
            } else {
                if lease.state != LeaseState::Released {
                    lease.state = LeaseState::Expired;
                }
                stats.remembered += 1;
            }
            let shard = provd_common::shard_of(&lease.chaddr, shards);
            tables[shard as usize].insert(key, lease);
        }
        (tables, stats)
    }
}

/// How a datagram reached the server.
#[derive(Debug, Clone, Copy)]
pub struct Ingress<'a> {
    pub payload: &'a [u8],
    /// Source address and port.
    pub src: SocketAddrV4,
    /// The local address it arrived on (IP_PKTINFO), used for direct clients' network and as
    /// the default server identifier.
    pub local: Ipv4Addr,
    /// The interface it arrived on, for broadcast replies.
    pub ifindex: u32,
}

/// Where a reply goes (RFC 2131 §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// To the relay agent at giaddr, port 67.
    Relay(SocketAddrV4),
    /// Unicast to a configured client (ciaddr), port 68.
    Client(SocketAddrV4),
    /// 255.255.255.255:68 out of the interface the request came in on.
    Broadcast { ifindex: u32 },
}

/// A reply the engine wrote into the caller's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply {
    pub kind: MessageType,
    pub dest: Destination,
    /// True when the reply acknowledges a lease: it may leave only after the lease log commit.
    pub durable: bool,
}

/// What the engine decided for one datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Reply(Reply),
    /// No reply: RELEASE and DECLINE never get one.
    NoReply,
    Dropped(Drop),
}

/// The request's facts the decisions use.
struct Ctx<'m, 'p> {
    sh: &'p Shared,
    msg: &'m Message<'m>,
    key: ClientKey,
    mac: [u8; 6],
    net: usize,
    class: ClassId,
    reservation: Option<&'p Reservation>,
    server_id: Ipv4Addr,
    ifindex: u32,
}

/// Option 82's (remote-id, circuit-id), when a relay agent added it.
type AgentIds = (Option<Vec<u8>>, Option<Vec<u8>>);

/// One worker's share of the server: its clients' leases and counters.
#[derive(Debug)]
pub struct Shard {
    shared: Arc<Shared>,
    st: ShardState,
}

/// Next-fit cursors spread so shards scan different parts of each pool.
fn cursors(shared: &Shared, index: u32, shards: u32) -> Vec<u32> {
    shared
        .pools
        .iter()
        .map(|p| (u64::from(p.len()) * u64::from(index) / u64::from(shards.max(1))) as u32)
        .collect()
}

/// The mutable half of a shard, apart from the shared policy so decisions can borrow both.
#[derive(Debug)]
struct ShardState {
    /// (this shard's index, the shard count)
    position: (u32, u32),
    table: LeaseTable,
    /// Next-fit allocation cursor per pool, spread so shards scan different parts of a pool.
    cursors: Vec<u32>,
    pending: Vec<(ClientKey, Lease)>,
    /// `Some` when the caller collects [`Binding`]s.
    bindings: Option<Vec<Binding>>,
    counters: Arc<Counters>,
    last_sweep: u32,
    scratch: String,
    limits: limits::Limits,
}

impl Shard {
    pub fn new(shared: Arc<Shared>, table: LeaseTable, index: u32, shards: u32) -> Self {
        let cursors = cursors(&shared, index, shards);
        let server = &shared.policy.server;
        let st = ShardState {
            position: (index, shards),
            table,
            cursors,
            pending: Vec::new(),
            bindings: None,
            counters: Arc::new(Counters::default()),
            last_sweep: 0,
            scratch: String::new(),
            limits: limits::Limits::new(server.agent_limit, server.relay_limit, shards),
        };
        Shard { shared, st }
    }

    pub fn counters(&self) -> Arc<Counters> {
        Arc::clone(&self.st.counters)
    }

    pub fn table(&self) -> &LeaseTable {
        &self.st.table
    }

    /// Lease records decided since the last call, to append to the log before any durable reply
    /// leaves.
    pub fn take_pending(&mut self) -> std::vec::Drain<'_, (ClientKey, Lease)> {
        self.st.pending.drain(..)
    }

    /// From now on, record a [`Binding`] for every ACK, to be taken with
    /// [`Shard::take_bindings`].
    pub fn collect_bindings(&mut self) {
        self.st.bindings.get_or_insert_with(Vec::new);
    }

    /// Bindings recorded since the last call (none unless [`Shard::collect_bindings`]).
    pub fn take_bindings(&mut self) -> impl Iterator<Item = Binding> + '_ {
        self.st
            .bindings
            .as_mut()
            .map(|b| b.drain(..))
            .into_iter()
            .flatten()
    }

    pub fn has_pending(&self) -> bool {
        !self.st.pending.is_empty()
    }

    /// The policy this shard decides with.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// A reload, step one (every shard parked, none allocating): claims in `next`'s pools the
    /// address of every lease of this shard that holds a claim in the current pools. `next` is
    /// not used yet; if the reload is called off it is dropped and nothing here changed.
    pub fn claim_into(&self, next: &Shared) {
        for (_, l) in self.st.table.iter() {
            let held = self
                .shared
                .pool(l.pool)
                .is_some_and(|p| p.is_claimed(l.addr));
            if held && let Some(id) = next.accounting_pool_of(l.addr) {
                next.pools[usize::from(id)].try_claim(l.addr);
            }
        }
    }

    /// A reload, step two (every shard has done [`Shard::claim_into`]): decides with `next`
    /// from now on. Leases are re-numbered to `next`'s pools; a lease whose address is in none
    /// of them keeps it until it ends (outside every pool), and is not offered it again.
    pub fn adopt(&mut self, next: Arc<Shared>) {
        for (_, l) in self.st.table.iter_mut() {
            l.pool = next.accounting_pool(l.addr);
        }
        let (index, shards) = self.st.position;
        self.st.cursors = cursors(&next, index, shards);
        let (was, now) = (&self.shared.policy.server, &next.policy.server);
        if (was.agent_limit, was.relay_limit) != (now.agent_limit, now.relay_limit) {
            let offers = std::mem::take(&mut self.st.limits.offers);
            self.st.limits = limits::Limits::new(now.agent_limit, now.relay_limit, shards);
            self.st.limits.offers = offers;
        }
        self.shared = next;
    }

    /// Ends `mac`'s bound lease as a DHCPRELEASE would (an operator's release): the address
    /// goes back to its pool and the record is pending for the log. Returns the address, or
    /// `None` if this shard holds no bound lease of `mac`.
    pub fn release_mac(&mut self, mac: [u8; 6], now: u32) -> Option<Ipv4Addr> {
        let (key, l) = self
            .st
            .table
            .iter()
            .find(|(_, l)| l.chaddr == mac && l.state == LeaseState::Bound && l.expires_at > now)
            .map(|(k, l)| (k.clone(), *l))?;
        let released = Lease {
            state: LeaseState::Released,
            expires_at: now,
            ..l
        };
        self.shared.release(&l);
        self.st.table.insert(key.clone(), released);
        self.st.pending.push((key, released));
        Some(l.addr)
    }

    /// Ends offers whose hold ran out and leases past their time, returning their addresses to
    /// the pools. Cheap to call often: it sweeps at most every few seconds.
    pub fn tick(&mut self, now: u32) -> usize {
        if now.wrapping_sub(self.st.last_sweep) < SWEEP_EVERY_SECS {
            return 0;
        }
        self.st.last_sweep = now;
        let forget_before = now.saturating_sub(self.shared.policy.server.forget_after_secs);
        let shared = &self.shared;
        self.st
            .table
            .sweep(now, forget_before, |_, lease| shared.release(lease))
    }

    /// Decides what to do with one datagram. A reply, if any, is written into `out`.
    pub fn handle(&mut self, now: u32, ingress: &Ingress<'_>, out: &mut Vec<u8>) -> Outcome {
        match self.decide(now, ingress, out) {
            Ok(o) => {
                // A durable reply (an ACK) is counted once its lease record is durable and it is
                // handed to the I/O path (see provd-dataplane's commit pipeline): one withheld
                // for a failed write was never sent.
                if let Outcome::Reply(r) = o
                    && !r.durable
                {
                    self.st.counters.sent(r.kind);
                }
                o
            }
            Err(d) => {
                self.st.counters.dropped(d);
                Outcome::Dropped(d)
            }
        }
    }

    fn decide(
        &mut self,
        now: u32,
        ingress: &Ingress<'_>,
        out: &mut Vec<u8>,
    ) -> Result<Outcome, Drop> {
        let msg = Message::parse(ingress.payload)?;
        if msg.op() != Op::Request {
            return Err(Drop::NotRequest);
        }
        let kind = match msg.message_type() {
            Ok(Some(t)) => t,
            Ok(None) => return Err(Drop::NoMessageType),
            Err(_) => return Err(Drop::UnknownMessageType),
        };
        self.st.counters.received(kind);
        let Some(mac) = msg.mac() else {
            return Err(Drop::UnsupportedHardware);
        };
        // (remote-id, circuit-id) of option 82, when a relay agent added it.
        let agent = match msg.relay_agent_info() {
            Some(v) => {
                let info = RelayAgentInfo::parse(&v).map_err(|_| Drop::BadRelayInfo)?;
                Some((
                    info.remote_id().map(<[u8]>::to_vec),
                    info.circuit_id().map(<[u8]>::to_vec),
                ))
            }
            None => None,
        };
        let sh: &Shared = &self.shared;
        let policy = &sh.policy;
        let giaddr = msg.giaddr();
        let ciaddr = msg.ciaddr();
        // RFC 2131 §4.3: a relayed request's network is the relay's; an unrelayed one with ciaddr
        // set (a unicast RENEW or INFORM, possibly from a relayed network, routed straight here)
        // belongs to the network containing ciaddr; anything else to the arrival interface's.
        let net = if !giaddr.is_unspecified() {
            policy.network_for_relay(giaddr)
        } else if !ciaddr.is_unspecified() {
            policy.network_containing(ciaddr)
        } else {
            policy.network_for_interface(ingress.local)
        }
        .ok_or(Drop::NoNetwork)?;
        // A run-time reservation is looked up only when the config has none for the MAC, and
        // only when there are any (one atomic load otherwise).
        let live = match policy.reservation_by_mac(&mac) {
            Some(_) => None,
            None => sh.live.get(&mac),
        };
        let reservation = policy
            .reservation_by_mac(&mac)
            .or(live.as_deref())
            .or_else(|| {
                agent
                    .as_ref()
                    .and_then(|(rid, _)| rid.as_deref())
                    .and_then(|rid| policy.reservation_by_remote_id(rid))
            });
        let class = match reservation.and_then(|r| r.class) {
            Some(c) => c,
            None => policy
                .classify(msg.vendor_class().as_deref())
                .ok_or(Drop::NoClass)?,
        };
        let key = match msg.client_id() {
            Some(id) => ClientKey::from_client_id(&id),
            None => ClientKey::from_hw(msg.htype(), msg.chaddr()),
        };
        let server_id = policy.server.server_id.unwrap_or(ingress.local);
        let ctx = Ctx {
            sh,
            msg: &msg,
            key,
            mac,
            net,
            class,
            reservation,
            server_id,
            ifindex: ingress.ifindex,
        };
        match kind {
            MessageType::Discover => {
                self.st.admit(now, &ctx, giaddr, agent)?;
                self.st.discover(now, &ctx, out)
            }
            MessageType::Request => self.st.request(now, &ctx, giaddr, agent, out),
            MessageType::Decline => self.st.decline(now, &ctx),
            MessageType::Release => self.st.release(now, &ctx),
            MessageType::Inform => self.st.inform(&ctx, out),
            MessageType::Offer | MessageType::Ack | MessageType::Nak => {
                Err(Drop::ServerMessageType)
            }
        }
    }
}

impl ShardState {
    /// Which subnet of the request's network may hold `addr` for its class.
    fn eligible_subnet(&self, ctx: &Ctx<'_, '_>, addr: Ipv4Addr) -> Option<usize> {
        let net = ctx.sh.policy.network(ctx.net);
        net.subnets
            .iter()
            .position(|s| s.contains(addr) && s.allows(ctx.class))
    }

    fn in_network(&self, ctx: &Ctx<'_, '_>, addr: Ipv4Addr) -> bool {
        ctx.sh
            .policy
            .network(ctx.net)
            .subnets
            .iter()
            .any(|s| s.contains(addr))
    }

    /// Whether `lease` (this client's) still holds its address, or can take it back.
    fn holds_or_reclaims(&self, ctx: &Ctx<'_, '_>, lease: &Lease, now: u32) -> bool {
        match lease.state {
            LeaseState::Bound | LeaseState::Offered if lease.expires_at > now => true,
            // The address went back to its pool (or was never in one): take it again if free.
            _ => match ctx.sh.pool(lease.pool) {
                Some(p) => p.try_claim(lease.addr),
                None => lease.pool == NO_POOL && ctx.sh.policy.is_reserved(lease.addr),
            },
        }
    }

    /// Claims `requested` for a client whose offer this server no longer holds: in this
    /// client's network and class, reserved for no one, in a pool and free there. A client
    /// new to the table must pass [`Self::admit`] first, as its DISCOVER did.
    fn claim_lost_offer(
        &mut self,
        now: u32,
        ctx: &Ctx<'_, '_>,
        requested: Ipv4Addr,
        giaddr: Ipv4Addr,
        agent: Option<AgentIds>,
    ) -> Result<bool, Drop> {
        if self.eligible_subnet(ctx, requested).is_none()
            || ctx.sh.policy.is_reserved(requested)
            || ctx.reservation.is_some()
        {
            return Ok(false);
        }
        let Some(pool) = ctx.sh.pool_of(requested) else {
            return Ok(false);
        };
        self.admit(now, ctx, giaddr, agent)?;
        Ok(ctx.sh.pools[usize::from(pool)].try_claim(requested))
    }

    /// Whether a DISCOVER may start a new client: one the table does not know and no
    /// reservation names takes a token from its relay agent's subscriber (option 82
    /// remote-id, else circuit-id) and from its relay. A known client is never limited: a
    /// storm of reboots is made of those.
    fn admit(
        &mut self,
        now: u32,
        ctx: &Ctx<'_, '_>,
        giaddr: Ipv4Addr,
        agent: Option<AgentIds>,
    ) -> Result<(), Drop> {
        if ctx.reservation.is_some() || self.table.get(&ctx.key).is_some() {
            return Ok(());
        }
        if let Some((rid, cid)) = agent {
            // Tagged, so a remote-id and a circuit-id with the same bytes stay apart.
            let id = match (rid, cid) {
                (Some(mut r), _) => {
                    r.push(1);
                    Some(r)
                }
                (None, Some(mut c)) => {
                    c.push(2);
                    Some(c)
                }
                (None, None) => None,
            };
            if let Some(id) = id
                && !self.limits.agents.take(&id, now)
            {
                return Err(Drop::AgentLimit);
            }
        }
        if !giaddr.is_unspecified() && !self.limits.relays.take(&giaddr, now) {
            return Err(Drop::RelayLimit);
        }
        Ok(())
    }

    /// A pool out of addresses: the oldest offer of this shard made at least
    /// `offer_reuse_after_secs` ago that this client may have (same network, a subnet its
    /// class may use) is taken from the client it was made to, whose REQUEST for it will be
    /// NAKed. The address stays claimed: it changes hands, not state.
    fn reuse_offer(&mut self, now: u32, ctx: &Ctx<'_, '_>) -> Option<(Ipv4Addr, u16)> {
        let server = &ctx.sh.policy.server;
        let (hold, min_age) = (server.offer_hold_secs, server.offer_reuse_after_secs);
        let net = ctx.sh.policy.network(ctx.net);
        let table = &self.table;
        let taken = self
            .limits
            .reuse_offer(now, hold, min_age, |expires_at, key| match table.get(key) {
                Some(l)
                    if l.state == LeaseState::Offered
                        && l.expires_at == expires_at
                        && l.expires_at > now
                        && *key != ctx.key =>
                {
                    let usable = l.pool != NO_POOL
                        && net
                            .subnets
                            .iter()
                            .any(|s| s.contains(l.addr) && s.allows(ctx.class));
                    if usable {
                        limits::Reuse::Take((key.clone(), l.addr, l.pool))
                    } else {
                        limits::Reuse::Elsewhere
                    }
                }
                _ => limits::Reuse::Stale,
            });
        let (victim, addr, pool) = taken?;
        self.table.remove(&victim);
        self.counters.offer_reused();
        Some((addr, pool))
    }

    fn discover(
        &mut self,
        now: u32,
        ctx: &Ctx<'_, '_>,
        out: &mut Vec<u8>,
    ) -> Result<Outcome, Drop> {
        let hold = ctx.sh.policy.server.offer_hold_secs;
        let (addr, pool, keep_bound) = self.choose_address(now, ctx)?;
        let subnet = self.eligible_subnet(ctx, addr).ok_or(Drop::NoNetwork)?;
        let lease_time = self.lease_time(ctx, subnet);
        let previous = self.table.get(&ctx.key).copied();
        let lease = match previous {
            // A bound client asking again keeps its binding; the ACK will extend it.
            Some(p) if keep_bound => p,
            _ => Lease {
                addr,
                expires_at: now.saturating_add(hold),
                state: LeaseState::Offered,
                chaddr: ctx.mac,
                pool,
            },
        };
        if let Some(p) = previous
            && p.addr != addr
            && matches!(p.state, LeaseState::Bound | LeaseState::Offered)
        {
            ctx.sh.release(&p);
        }
        if lease.state == LeaseState::Offered {
            self.limits
                .push_offer(lease.expires_at, ctx.key.clone(), now);
        }
        self.table.insert(ctx.key.clone(), lease);
        let reply = self.write_reply(
            ctx,
            MessageType::Offer,
            addr,
            Some((subnet, lease_time)),
            out,
        )?;
        Ok(Outcome::Reply(reply))
    }

    /// The address to offer and its pool, and whether it is the client's current binding.
    fn choose_address(
        &mut self,
        now: u32,
        ctx: &Ctx<'_, '_>,
    ) -> Result<(Ipv4Addr, u16, bool), Drop> {
        if let Some(r) = ctx.reservation
            && self.eligible_subnet(ctx, r.address).is_some()
        {
            let bound = self
                .table
                .get(&ctx.key)
                .is_some_and(|l| l.addr == r.address && l.state == LeaseState::Bound);
            return Ok((r.address, NO_POOL, bound));
        }
        if let Some(l) = self.table.get(&ctx.key).copied()
            && self.eligible_subnet(ctx, l.addr).is_some()
            && !ctx.sh.policy.is_reserved(l.addr)
            // Outside every pool, the address was the client's only by a reservation it no
            // longer has (removed at run time or from the config).
            && l.pool != NO_POOL
            && self.holds_or_reclaims(ctx, &l, now)
        {
            let bound = l.state == LeaseState::Bound && l.expires_at > now;
            return Ok((l.addr, l.pool, bound));
        }
        if let Some(want) = ctx.msg.requested_ip()
            && self.eligible_subnet(ctx, want).is_some()
            && !ctx.sh.policy.is_reserved(want)
            && let Some(pool) = ctx.sh.pool_of(want)
            && ctx.sh.pools[usize::from(pool)].try_claim(want)
        {
            return Ok((want, pool, false));
        }
        let net = ctx.sh.policy.network(ctx.net);
        for subnet in net.subnets.iter().filter(|s| s.allows(ctx.class)) {
            for pool in &subnet.pools {
                let bm = &ctx.sh.pools[usize::from(pool.id)];
                let cursor = &mut self.cursors[usize::from(pool.id)];
                if let Some(a) = bm.claim_any(*cursor) {
                    *cursor = u32::from(a)
                        .wrapping_sub(u32::from(bm.first()))
                        .wrapping_add(1);
                    return Ok((a, pool.id, false));
                }
            }
        }
        match self.reuse_offer(now, ctx) {
            Some((a, pool)) => Ok((a, pool, false)),
            None => Err(Drop::PoolExhausted),
        }
    }

    fn request(
        &mut self,
        now: u32,
        ctx: &Ctx<'_, '_>,
        giaddr: Ipv4Addr,
        agent: Option<AgentIds>,
        out: &mut Vec<u8>,
    ) -> Result<Outcome, Drop> {
        let existing = self.table.get(&ctx.key).copied();
        let kind = ctx.msg.request_kind();
        let restart = matches!(
            kind,
            RequestKind::Selecting { .. } | RequestKind::InitReboot { .. }
        );
        let addr = match kind {
            RequestKind::Selecting {
                server_id,
                requested,
            } => {
                if server_id != ctx.server_id {
                    // The client took another server's offer: free what we held for it.
                    if let Some(l) = existing.filter(|l| l.state == LeaseState::Offered) {
                        ctx.sh.release(&l);
                        self.table.remove(&ctx.key);
                    }
                    return Err(Drop::OtherServerChosen);
                }
                match existing {
                    Some(l) if l.addr == requested && self.holds_or_reclaims(ctx, &l, now) => {
                        requested
                    }
                    Some(l) if l.addr == requested => return self.nak(ctx, Nak::AddressTaken, out),
                    // Our offer is gone (provd restarted, or the client took longer than
                    // offer_hold_secs): honour it while the address is free rather than NAK and
                    // send the client back through DISCOVER with its backoff, which in a storm
                    // after a restart is most of the fleet. A client new to the table is
                    // admitted as its DISCOVER would have been.
                    None if self.claim_lost_offer(now, ctx, requested, giaddr, agent)? => {
                        self.counters.lost_offer_honoured();
                        requested
                    }
                    _ => return self.nak(ctx, Nak::NotOffered, out),
                }
            }
            RequestKind::InitReboot { requested } => {
                if self.eligible_subnet(ctx, requested).is_none() {
                    return self.nak(ctx, Nak::WrongNetwork, out);
                }
                match existing {
                    Some(l) if l.addr == requested => {
                        if !self.holds_or_reclaims(ctx, &l, now) {
                            return self.nak(ctx, Nak::AddressTaken, out);
                        }
                        requested
                    }
                    Some(_) => return self.nak(ctx, Nak::NotYours, out),
                    None if ctx.reservation.is_some_and(|r| r.address == requested) => requested,
                    // RFC 2131 §4.3.2: no record of this client, stay silent.
                    None => return Err(Drop::UnknownClient),
                }
            }
            RequestKind::RenewingOrRebinding { ciaddr } => {
                if !self.in_network(ctx, ciaddr) {
                    return self.nak(ctx, Nak::WrongNetwork, out);
                }
                match existing {
                    Some(l) if l.addr == ciaddr && self.holds_or_reclaims(ctx, &l, now) => ciaddr,
                    // Another server may own it: only NAK when certainly wrong (above).
                    _ => return Err(Drop::NotOurBinding),
                }
            }
            RequestKind::Malformed => return Err(Drop::MalformedRequest),
        };
        let Some(subnet) = self.eligible_subnet(ctx, addr) else {
            return self.nak(ctx, Nak::WrongNetwork, out);
        };
        let lease_time = self.lease_time(ctx, subnet);
        let pool = ctx.sh.accounting_pool(addr);
        let lease = Lease {
            addr,
            expires_at: now.saturating_add(lease_time),
            state: LeaseState::Bound,
            chaddr: ctx.mac,
            pool,
        };
        let reply =
            self.write_reply(ctx, MessageType::Ack, addr, Some((subnet, lease_time)), out)?;
        self.table.insert(ctx.key.clone(), lease);
        self.pending.push((ctx.key.clone(), lease));
        if let Some(b) = &mut self.bindings {
            let relay = ctx.msg.relay_agent_info();
            let relay = relay
                .as_deref()
                .and_then(|v| provd_dhcp::relay::RelayAgentInfo::parse(v).ok());
            b.push(Binding {
                mac: ctx.mac,
                addr,
                expires_at: lease.expires_at,
                class: Some(ctx.class),
                giaddr: ctx.msg.giaddr(),
                vendor_class: ctx.msg.vendor_class().map(Box::from),
                remote_id: relay.and_then(|r| r.remote_id()).map(Box::from),
                circuit_id: relay.and_then(|r| r.circuit_id()).map(Box::from),
                restart,
            });
        }
        Ok(Outcome::Reply(Reply {
            durable: true,
            ..reply
        }))
    }

    fn decline(&mut self, now: u32, ctx: &Ctx<'_, '_>) -> Result<Outcome, Drop> {
        let declined = ctx.msg.requested_ip().ok_or(Drop::DeclineUnknown)?;
        let Some(l) = self
            .table
            .get(&ctx.key)
            .copied()
            .filter(|l| l.addr == declined)
        else {
            return Err(Drop::DeclineUnknown);
        };
        // The address stays claimed, held by a pseudo-client until the quarantine ends; the
        // holder is persisted like any lease, so the quarantine survives a restart and ends
        // through the ordinary expiry sweep.
        let o = declined.octets();
        let holder = ClientKey::from_hw(0, &[b'D', b'E', b'C', o[0], o[1], o[2], o[3]]);
        let quarantine = Lease {
            expires_at: now.saturating_add(ctx.sh.policy.server.decline_quarantine_secs),
            state: LeaseState::Bound,
            ..l
        };
        let dropped = Lease {
            state: LeaseState::Released,
            expires_at: now,
            ..l
        };
        self.table.insert(holder.clone(), quarantine);
        self.table.insert(ctx.key.clone(), dropped);
        self.pending.push((holder, quarantine));
        self.pending.push((ctx.key.clone(), dropped));
        Ok(Outcome::NoReply)
    }

    fn release(&mut self, now: u32, ctx: &Ctx<'_, '_>) -> Result<Outcome, Drop> {
        let ciaddr = ctx.msg.ciaddr();
        let Some(l) = self
            .table
            .get(&ctx.key)
            .copied()
            .filter(|l| l.addr == ciaddr && l.state == LeaseState::Bound)
        else {
            return Err(Drop::ReleaseUnknown);
        };
        // Remembered as released, so the same client gets the same address back if it is free.
        let released = Lease {
            state: LeaseState::Released,
            expires_at: now,
            ..l
        };
        ctx.sh.release(&l);
        self.table.insert(ctx.key.clone(), released);
        self.pending.push((ctx.key.clone(), released));
        Ok(Outcome::NoReply)
    }

    fn inform(&mut self, ctx: &Ctx<'_, '_>, out: &mut Vec<u8>) -> Result<Outcome, Drop> {
        let ciaddr = ctx.msg.ciaddr();
        if !self.in_network(ctx, ciaddr) {
            return Err(Drop::NoNetwork);
        }
        // INFORM: configuration only: no yiaddr, no lease times (RFC 2131 §4.3.5).
        self.write_reply(ctx, MessageType::Ack, Ipv4Addr::UNSPECIFIED, None, out)
            .map(Outcome::Reply)
    }

    fn lease_time(&self, ctx: &Ctx<'_, '_>, subnet: usize) -> u32 {
        let s = &ctx.sh.policy.network(ctx.net).subnets[subnet];
        ctx.sh.policy.lease_time_for(ctx.class, s)
    }

    fn destination(&self, ctx: &Ctx<'_, '_>, kind: MessageType) -> Destination {
        let m = ctx.msg;
        let giaddr = m.giaddr();
        if !giaddr.is_unspecified() {
            Destination::Relay(SocketAddrV4::new(giaddr, 67))
        } else if !m.ciaddr().is_unspecified() && kind != MessageType::Nak {
            Destination::Client(SocketAddrV4::new(m.ciaddr(), 68))
        } else {
            // Broadcast flag set, or a client without an address: unicast to yiaddr would need
            // an ARP entry injected for chaddr, so broadcast on the arrival interface instead.
            Destination::Broadcast {
                ifindex: ctx.ifindex,
            }
        }
    }

    fn max_len(ctx: &Ctx<'_, '_>) -> usize {
        ctx.msg
            .max_message_size()
            .map_or(DEFAULT_MAX_MESSAGE, |m| usize::from(m) - 28)
    }

    /// Writes an OFFER or ACK: lease options when `lease` is given (subnet index, seconds).
    fn write_reply(
        &mut self,
        ctx: &Ctx<'_, '_>,
        kind: MessageType,
        yiaddr: Ipv4Addr,
        lease: Option<(usize, u32)>,
        out: &mut Vec<u8>,
    ) -> Result<Reply, Drop> {
        let policy = &ctx.sh.policy;
        let class = policy.class(ctx.class);
        let m = ctx.msg;
        self.scratch.clear();
        if let Some(bf) = ctx
            .reservation
            .and_then(|r| r.boot_file.as_ref())
            .or(class.boot_file.as_ref())
        {
            bf.render_into(&ctx.mac, &mut self.scratch);
        }
        let mut header = Header::reply(m.xid(), *m.chaddr_field(), m.htype(), m.hlen());
        header.hops = m.hops();
        header.flags = m.flags() & BROADCAST_FLAG;
        header.giaddr = m.giaddr();
        header.yiaddr = yiaddr;
        if kind == MessageType::Ack {
            header.ciaddr = m.ciaddr();
        }
        header.siaddr = class.next_server.unwrap_or(Ipv4Addr::UNSPECIFIED);
        let boot_file = self.scratch.as_bytes();
        let in_header = boot_file.len() <= 127;
        if in_header {
            header.file = boot_file;
        }
        self.encode_reply(ctx, kind, &header, lease, in_header, out)
    }

    fn encode_reply(
        &self,
        ctx: &Ctx<'_, '_>,
        kind: MessageType,
        header: &Header<'_>,
        lease: Option<(usize, u32)>,
        file_in_header: bool,
        out: &mut Vec<u8>,
    ) -> Result<Reply, Drop> {
        let policy = &ctx.sh.policy;
        let m = ctx.msg;
        let too_large = |_| Drop::ReplyTooLarge;
        let mut w = MessageWriter::new(out, header, Self::max_len(ctx)).map_err(too_large)?;
        w.option(code::MESSAGE_TYPE, &[kind as u8])
            .map_err(too_large)?;
        w.ipv4(code::SERVER_ID, ctx.server_id).map_err(too_large)?;
        let subnet = match lease {
            Some((subnet, secs)) => {
                let l = &policy.lease;
                w.u32(code::LEASE_TIME, secs).map_err(too_large)?;
                w.u32(code::RENEWAL_TIME, l.t1(secs)).map_err(too_large)?;
                w.u32(code::REBINDING_TIME, l.t2(secs)).map_err(too_large)?;
                Some(subnet)
            }
            None => policy
                .network(ctx.net)
                .subnets
                .iter()
                .position(|s| s.contains(m.ciaddr())),
        };
        if let Some(s) = subnet {
            w.raw(&ctx.sh.blobs.subnets[ctx.net][s]);
        }
        w.raw(&ctx.sh.blobs.classes[usize::from(ctx.class)]);
        if !self.scratch.is_empty() && (!file_in_header || requested(m, code::BOOTFILE)) {
            w.option(code::BOOTFILE, self.scratch.as_bytes())
                .map_err(too_large)?;
        }
        // RFC 3046: echo the relay agent information unchanged, last.
        if let Some(r82) = m.relay_agent_info() {
            w.option(code::RELAY_AGENT_INFO, &r82).map_err(too_large)?;
        }
        w.finish().map_err(too_large)?;
        Ok(Reply {
            kind,
            dest: self.destination(ctx, kind),
            durable: false,
        })
    }

    fn nak(&mut self, ctx: &Ctx<'_, '_>, reason: Nak, out: &mut Vec<u8>) -> Result<Outcome, Drop> {
        self.counters.nak(reason);
        let m = ctx.msg;
        let mut header = Header::reply(m.xid(), *m.chaddr_field(), m.htype(), m.hlen());
        header.hops = m.hops();
        header.giaddr = m.giaddr();
        // Through a relay a NAK must be broadcast by the relay: the client may have no address.
        header.flags = if m.giaddr().is_unspecified() {
            m.flags() & BROADCAST_FLAG
        } else {
            BROADCAST_FLAG
        };
        let too_large = |_| Drop::ReplyTooLarge;
        let mut w = MessageWriter::new(out, &header, Self::max_len(ctx)).map_err(too_large)?;
        w.option(code::MESSAGE_TYPE, &[MessageType::Nak as u8])
            .map_err(too_large)?;
        w.ipv4(code::SERVER_ID, ctx.server_id).map_err(too_large)?;
        w.option(code::MESSAGE, reason.label().as_bytes())
            .map_err(too_large)?;
        if let Some(r82) = m.relay_agent_info() {
            w.option(code::RELAY_AGENT_INFO, &r82).map_err(too_large)?;
        }
        w.finish().map_err(too_large)?;
        Ok(Outcome::Reply(Reply {
            kind: MessageType::Nak,
            dest: self.destination(ctx, MessageType::Nak),
            durable: false,
        }))
    }
}

fn requested(m: &Message<'_>, code: u8) -> bool {
    m.param_request_list()
        .is_some_and(|prl| prl.contains(&code))
}

#[cfg(test)]
mod tests;
