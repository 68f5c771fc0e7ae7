//! The typed layer (`shmsg::typed`) over the ring and over a socket: values
//! arrive equal, and a message of the wrong length is a typed error that
//! loses nothing after it.

use shmsg::typed::zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};
use shmsg::typed::{TypedReceiver, TypedSender};
use shmsg::{Channel, Error, Sender};

mod common;

#[derive(FromBytes, IntoBytes, Immutable, KnownLayout, Clone, Copy, Debug, PartialEq)]
#[repr(C)]
struct Order {
    id: u64,
    quantity: u32,
    side: u32,
    price: f64,
}

fn order(i: u64) -> Order {
    Order {
        id: i,
        quantity: (i * 3) as u32,
        side: (i % 2) as u32,
        price: i as f64 * 0.25,
    }
}

fn check(a: Channel, b: Channel) {
    let (tx, _) = a.split();
    let (_, rx) = b.split();
    let mut tx = TypedSender::<Order, _>::new(tx).unwrap();
    let mut rx = TypedReceiver::<Order, _>::new(rx).unwrap();
    tx.send_batch(&[order(0), order(1)]).unwrap();
    assert_eq!(rx.recv().unwrap(), order(0));
    assert_eq!(rx.recv().unwrap(), order(1));
    // A peer that sends bytes of another length.
    let mut raw = tx.into_inner();
    raw.send(b"not an order").unwrap();
    raw.send(order(2).as_bytes()).unwrap();
    assert!(matches!(
        rx.recv(),
        Err(Error::WrongSize {
            expected: 24,
            found: 12
        })
    ));
    assert_eq!(rx.recv().unwrap(), order(2));
    assert!(matches!(rx.try_recv(), Err(Error::Empty)));
}

#[test]
fn typed_values_over_the_ring() {
    let geometry = shmsg::shm::Geometry::default();
    let (tx, rx) = shmsg::shm::spsc::channel(geometry).unwrap();
    let (back_tx, back_rx) = shmsg::shm::spsc::channel(geometry).unwrap();
    check(Channel::new(tx, back_rx), Channel::new(back_tx, rx));
}

#[test]
fn typed_values_over_a_unix_socket() {
    let endpoint = format!("unix:@{}", common::unique("shmsg-typed", "unix"));
    let mut listener = shmsg::listen(&endpoint).unwrap();
    let client = std::thread::spawn(move || shmsg::connect(&endpoint).unwrap());
    let server = listener.accept().unwrap();
    check(client.join().unwrap(), server);
}

#[test]
fn a_type_larger_than_the_channel_is_refused() {
    let geometry = shmsg::shm::Geometry::new(64, 16).unwrap();
    let (tx, rx) = shmsg::shm::spsc::channel(geometry).unwrap();
    assert!(matches!(
        TypedSender::<Order, _>::new(tx),
        Err(Error::MessageTooLarge { len: 24, max: 16 })
    ));
    assert!(TypedReceiver::<Order, _>::new(rx).is_err());
}
