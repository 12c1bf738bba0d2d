//! Events to containerd (TaskCreate, TaskExit...), sent in order by one thread so that no
//! task operation waits on containerd, and resent over a new connection when containerd
//! restarts. The connection is closed when no event has come for a second.
//!
//! Each event is packed here, with its type named from the message's own name, rather than by
//! the crate's `RemotePublisher`: that one asks the message for its reflection descriptor,
//! which builds rust-protobuf's descriptors of the whole events proto and what it imports,
//! heap and code that a shim with one task otherwise never touches (about 0.3 MiB of RSS).

use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::{Duration, SystemTime};

use containerd_shim::protos::protobuf::well_known_types::any::Any;
use containerd_shim::protos::protobuf::{Message, MessageField};
use containerd_shim::protos::shim::event::Envelope;
use containerd_shim::protos::shim::events::ForwardRequest;
use containerd_shim::protos::shim::events_ttrpc::EventsClient;
use containerd_shim::protos::ttrpc::{self, context::Context};

use crate::tasks::timestamp;

/// One event: its topic (`/tasks/exit`) and the packed message.
pub struct Event {
    topic: &'static str,
    body: Any,
}

/// The events proto's package: an event's type is `containerd.events.<Message>`, the name
/// containerd's typeurl registry knows it by.
const PACKAGE: &str = "containerd.events";

impl Event {
    /// Pack `message` for `topic`; `None` if it does not encode (it always does for the
    /// generated task events, whose fields are all plain).
    pub fn new<M: Message>(topic: &'static str, message: &M) -> Option<Event> {
        let value = message.write_to_bytes().ok()?;
        Some(Event {
            topic,
            body: Any {
                type_url: format!("{PACKAGE}.{}", M::NAME),
                value,
                ..Default::default()
            },
        })
    }
}

/// Start the sending thread; events queued on the returned sender are published to
/// containerd's ttrpc `address` in `namespace`, in the order queued.
pub fn start(address: String, namespace: String) -> Sender<Event> {
    let (tx, rx) = channel::<Event>();
    std::thread::Builder::new()
        .name("events".into())
        .spawn(move || send_all(&address, &namespace, rx))
        .expect("spawn the events thread");
    tx
}

fn connect(address: &str) -> ttrpc::Result<EventsClient> {
    // containerd gives a bare path (TTRPC_ADDRESS); ttrpc wants a scheme.
    let url = if address.contains("://") {
        address.to_owned()
    } else {
        format!("unix://{address}")
    };
    Ok(EventsClient::new(ttrpc::Client::connect(&url)?))
}

/// How long the connection to containerd is kept after the last event: ttrpc's client has a
/// thread that wakes every 10 ms while connected (100 wakeups a second, per shim), and events
/// come in bursts (create and start, then an exit much later).
const IDLE: Duration = Duration::from_secs(1);

fn send_all(address: &str, namespace: &str, rx: Receiver<Event>) {
    let mut client = None;
    loop {
        let event = if client.is_some() {
            match rx.recv_timeout(IDLE) {
                Ok(e) => e,
                Err(RecvTimeoutError::Timeout) => {
                    client = None;
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => return,
            }
        } else {
            match rx.recv() {
                Ok(e) => e,
                Err(_) => return,
            }
        };
        let request = envelope(namespace, event);
        // containerd may be restarting: retry for a while over a new connection, then drop
        // the event (containerd asks every task's state when it reconnects).
        let mut delay = Duration::from_millis(20);
        for attempt in 0..12 {
            if client.is_none() {
                client = connect(address)
                    .map_err(|e| log::warn!("connect to containerd at {address}: {e}"))
                    .ok();
            }
            let Some(c) = &client else {
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_secs(1));
                continue;
            };
            match c.forward(Context::default(), &request) {
                Ok(_) => break,
                Err(e) => {
                    let topic = &request.envelope.topic;
                    log::warn!("publish {topic} (attempt {attempt}): {e}");
                    client = None;
                }
            }
        }
    }
}

fn envelope(namespace: &str, event: Event) -> ForwardRequest {
    ForwardRequest {
        envelope: MessageField::some(Envelope {
            timestamp: MessageField::some(timestamp(SystemTime::now())),
            namespace: namespace.to_owned(),
            topic: event.topic.to_owned(),
            event: MessageField::some(event.body),
            ..Default::default()
        }),
        ..Default::default()
    }
}
