//! Events to containerd (TaskCreate, TaskExit...), sent in order by one thread so that no
//! task operation waits on containerd, and resent over a new connection when containerd
//! restarts.

use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::Duration;

use containerd_shim::protos::protobuf::MessageDyn;
use containerd_shim::protos::ttrpc::context::Context;
use containerd_shim::publisher::RemotePublisher;

/// One event: its topic (`/tasks/exit`) and its message.
pub type Event = (&'static str, Box<dyn MessageDyn>);

/// Start the sending thread; events queued on the returned sender are published to
/// containerd's ttrpc `address` in `namespace`, in the order queued.
pub fn start(first: RemotePublisher, address: String, namespace: String) -> Sender<Event> {
    let (tx, rx) = channel::<Event>();
    std::thread::Builder::new()
        .name("events".into())
        .spawn(move || send_all(first, &address, &namespace, rx))
        .expect("spawn the events thread");
    tx
}

fn send_all(first: RemotePublisher, address: &str, namespace: &str, rx: Receiver<Event>) {
    let mut publisher = Some(first);
    for (topic, event) in rx {
        // containerd may be restarting: retry for a while over a new connection, then drop
        // the event (containerd asks every task's state when it reconnects).
        let mut delay = Duration::from_millis(20);
        for attempt in 0..12 {
            if publisher.is_none() {
                publisher = RemotePublisher::new(address).ok();
            }
            let Some(p) = &publisher else {
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_secs(1));
                continue;
            };
            match p.publish(Context::default(), topic, namespace, event.clone_box()) {
                Ok(()) => break,
                Err(e) => {
                    log::warn!("publish {topic} (attempt {attempt}): {e}");
                    publisher = None;
                }
            }
        }
    }
}
