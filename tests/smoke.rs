use arcycle::{collect, Cc, Trace, Weak};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Mutex;

static DROPS: AtomicUsize = AtomicUsize::new(0);
static LOCK: Mutex<()> = Mutex::new(());

#[derive(Trace)]
struct Node {
    id: usize,
    next: Mutex<Vec<Cc<Node>>>,
}
impl Drop for Node {
    fn drop(&mut self) {
        DROPS.fetch_add(1, SeqCst);
    }
}
fn node(id: usize) -> Cc<Node> {
    Cc::new(Node {
        id,
        next: Mutex::new(Vec::new()),
    })
}

#[test]
fn self_loop_and_pair_and_ring() {
    let _g = LOCK.lock().unwrap();
    // The ring's 1000 roots reach the automatic trigger's floor
    // (`arcycle::MIN_TRIGGER`): this test counts what `collect()` frees.
    arcycle::disable();
    let before = DROPS.load(SeqCst);
    let a = node(0);
    a.next.lock().unwrap().push(a.clone());
    drop(a);
    assert_eq!(DROPS.load(SeqCst), before);
    assert_eq!(collect(), 1);
    assert_eq!(DROPS.load(SeqCst), before + 1);

    let ring: Vec<_> = (0..1000).map(node).collect();
    for i in 0..1000 {
        ring[i]
            .next
            .lock()
            .unwrap()
            .push(ring[(i + 1) % 1000].clone());
    }
    let w: Weak<Node> = Cc::downgrade(&ring[5]);
    drop(ring);
    assert_eq!(collect(), 1000);
    assert_eq!(DROPS.load(SeqCst), before + 1001);
    assert!(w.upgrade().is_none());
    arcycle::enable();
}

#[test]
fn live_cycle_survives() {
    let _g = LOCK.lock().unwrap();
    let before = DROPS.load(SeqCst);
    let a = node(1);
    let b = node(2);
    a.next.lock().unwrap().push(b.clone());
    b.next.lock().unwrap().push(a.clone());
    drop(b);
    assert_eq!(collect(), 0);
    assert_eq!(a.next.lock().unwrap()[0].id, 2);
    drop(a);
    assert_eq!(collect(), 2);
    assert_eq!(DROPS.load(SeqCst), before + 2);
}
