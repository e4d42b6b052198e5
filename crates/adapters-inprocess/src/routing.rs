//! The subscription table: which groups exist, their members, and which member of a group
//! receives a given event.

use flow_domain::event::Event;
use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use tokio::sync::mpsc;

/// Identifies one member (one subscription) of a group.
pub(crate) type MemberId = u64;

/// One subscription: the names it asked for and the sending side of its queue.
pub(crate) struct Member {
    pub(crate) id: MemberId,
    pub(crate) names: Vec<&'static str>,
    pub(crate) tx: mpsc::Sender<Event>,
}

/// The members of one consumer group, in joining order.
#[derive(Default)]
pub(crate) struct Group {
    members: Vec<Member>,
    /// Round-robin position for events without a key.
    next_unkeyed: usize,
}

/// Every group and its members.
#[derive(Default)]
pub(crate) struct Table {
    groups: HashMap<String, Group>,
    next_member: MemberId,
}

/// Where to send one event for one group.
pub(crate) struct Target {
    pub(crate) group: String,
    pub(crate) member: MemberId,
    pub(crate) tx: mpsc::Sender<Event>,
}

impl Table {
    /// Adds a member to `group` (creating the group) and returns its id.
    pub(crate) fn join(&mut self, group: &str, names: &[&'static str], tx: mpsc::Sender<Event>) -> MemberId {
        self.next_member += 1;
        let id = self.next_member;
        let member = Member { id, names: names.to_vec(), tx };
        self.groups.entry(group.to_owned()).or_default().members.push(member);
        id
    }

    /// Removes a member; a group left without members is forgotten.
    pub(crate) fn leave(&mut self, group: &str, member: MemberId) {
        if let Some(g) = self.groups.get_mut(group) {
            g.members.retain(|m| m.id != member);
            if g.members.is_empty() {
                self.groups.remove(group);
            }
        }
    }

    /// Forgets every group (closing every member's queue once the senders are dropped).
    pub(crate) fn clear(&mut self) {
        self.groups.clear();
    }

    /// The member of every group that should receive `event`.
    pub(crate) fn targets(&mut self, event: &Event) -> Vec<Target> {
        self.groups
            .iter_mut()
            .filter_map(|(name, group)| {
                group.route(event).map(|(member, tx)| Target { group: name.clone(), member, tx })
            })
            .collect()
    }

    /// The member of `group` that should receive `event`, if the group has one for its name.
    pub(crate) fn target_in(&mut self, group: &str, event: &Event) -> Option<Target> {
        let g = self.groups.get_mut(group)?;
        g.route(event).map(|(member, tx)| Target { group: group.to_owned(), member, tx })
    }
}

impl Group {
    /// Chooses among the members subscribed to the event's name: by key hash when the event
    /// has a key (same key, same member while membership is stable), round-robin otherwise.
    fn route(&mut self, event: &Event) -> Option<(MemberId, mpsc::Sender<Event>)> {
        let eligible: Vec<&Member> =
            self.members.iter().filter(|m| m.names.contains(&event.name.as_str())).collect();
        if eligible.is_empty() {
            return None;
        }
        let index = match &event.key {
            Some(key) => {
                let mut hasher = DefaultHasher::new();
                key.hash(&mut hasher);
                (hasher.finish() % eligible.len() as u64) as usize
            }
            None => {
                self.next_unkeyed = self.next_unkeyed.wrapping_add(1);
                self.next_unkeyed % eligible.len()
            }
        };
        let member = eligible[index];
        Some((member.id, member.tx.clone()))
    }
}
