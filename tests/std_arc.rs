//! `std`'s own tests of `Arc` and `sync::Weak`, ported to `Cc` and
//! `arcycle::Weak`.
//!
//! # Source
//!
//! The Rust standard library as shipped with rustc 1.95.0 (59807616e
//! 2026-04-14), component `rust-src`:
//!
//! * `library/alloctests/tests/sync.rs` (module [`sync`] below; in older
//!   toolchains this file was `library/alloc/src/sync/tests.rs`);
//! * `library/alloctests/tests/arc.rs` (module [`arc`] below).
//!
//! Each test keeps its name, its order and its assertions. Only the
//! mechanics are adapted, each at the line where it happens (marked
//! "port:"):
//!
//! * `Arc` is `Cc`; `Weak` is `arcycle::Weak`;
//! * an implicit unsizing coercion (`let x: Arc<[T]> = Arc::new([..])`,
//!   `Arc<dyn Trait>`, `Weak<dyn Any>`) is `arcycle::coerce!` /
//!   `arcycle::coerce_weak!` (stable Rust cannot implement `CoerceUnsized`
//!   for a user type);
//! * a local type put in a `Cc` derives `Trace` (or is declared a leaf),
//!   and `dyn Display` / `dyn Debug` inside a `Box` converted to a `Cc`
//!   are a local `dyn Trait` with `Display`/`Debug` plus `Trace + Send +
//!   Sync` as supertraits (`From<Box<T>>` needs `T: Trace + Send + Sync`);
//! * `Cc::new` requires `Send + Sync + 'static`: the `Canary`'s raw pointer
//!   is declared `Send + Sync` (it points to a local that outlives every
//!   handle, as in the original), and the `RefCell` counters of
//!   `partial_eq` are a `Mutex` (same counting, same assertions);
//! * `TrustedLen` is unstable: the `shared_from_iter_trustedlen_*` tests
//!   lose their `assert_trusted_len(&iter)` line (a compile-time check of
//!   the iterator, not of `Arc`), and `shared_from_iter_trustedlen_no_fuse`
//!   its `unsafe impl TrustedLen` — `Cc`'s `FromIterator` has one path
//!   for every iterator, so these exercise it with the same iterators and
//!   the same expected results.
//!
//! # Not ported
//!
//! | test | reason |
//! |---|---|
//! | `sync::arc_doesnt_leak_allocator` | custom allocators (`Arc::new_in`, `allocator_api`, unstable), `downcast_unchecked` and `new_zeroed_slice_in` (unstable) |
//! | `arc::eq` | asserts that `==` on two handles to one allocation of an `Eq` type never calls `eq` (`Arc`'s `ptr_eq` shortcut through `std`-internal specialisation); `Cc` cannot specialise on stable and always compares values (documented on `impl PartialEq for Cc`) |
//! | `arc::weak_may_dangle` | relies on `#[may_dangle]` on `Weak`'s `Drop` (`dropck_eyepatch`, unstable); it also stores a borrowed `&'a str` |
//! | `arc::panic_no_leak` | custom allocator (`Rc::new_in`, `allocator_api`, unstable) |
//! | `arc::test_unique_arc_weak` | `UniqueArc` (`unique_rc_arc`, unstable) |
//! | `arc::pin_coerce_unsized` (a module of compile-only functions) | `UniqueArc` (unstable), and implicit `Pin<Arc<T>> -> Pin<Arc<dyn Trait>>` coercion, which needs `CoerceUnsized` for the pointer type (unstable for user types) |
//!
//! Kept as in `std`: `sync::arc_drop_dereferenceable_race` runs only under
//! Miri (`#[cfg(miri)]`, it relies on Stacked Borrows), and the `_Foo`
//! struct checks that the comparison and `Default` derives work through a
//! `Cc` field.
//!
//! # Count
//!
//! `std` has 57 tests here (43 in `sync.rs`, 14 in `arc.rs`). Ported: 52
//! (42 and 10); skipped: 5 (the table above, which also lists the
//! compile-only `pin_coerce_unsized` module). Of the 52, 51 run on `cargo
//! test` and all of them pass, none is ignored;
//! `arc_drop_dereferenceable_race` runs under Miri only, as in `std`.
//!
//! `sync::test_array_from_slice` needed `TryFrom<Cc<[T]>> for Cc<[T;
//! N]>`, which arcycle gained for it (`src/cc/convert.rs`).
//!
//! # License
//!
//! The tests are from the Rust project, dual-licensed MIT OR Apache-2.0,
//! like this crate (see LICENSE-MIT and LICENSE-APACHE; copyright the
//! Rust project developers).

mod sync {
    // port: `use alloc::sync::*` is `Cc` and arcycle's `Weak`; the
    // allocator imports went with `arc_doesnt_leak_allocator`.
    use arcycle::{Cc, Trace, Weak};
    use std::clone::Clone;
    use std::option::Option::None;
    use std::sync::atomic::Ordering::*;
    use std::sync::atomic::{self, AtomicUsize};
    use std::sync::mpsc::channel;
    use std::sync::Mutex;
    use std::thread;

    struct Canary(*mut AtomicUsize);

    // port: `Cc::new` requires `Send + Sync + 'static`. The pointer is to a
    // local of the test that outlives every handle, as in `std`'s test.
    // SAFETY: the pointee is an atomic, used only through `&`.
    unsafe impl Send for Canary {}
    // SAFETY: as above.
    unsafe impl Sync for Canary {}
    arcycle::leaf!(Canary);

    impl Drop for Canary {
        fn drop(&mut self) {
            unsafe {
                match *self {
                    Canary(c) => {
                        (*c).fetch_add(1, SeqCst);
                    }
                }
            }
        }
    }

    #[test]
    #[cfg_attr(target_os = "emscripten", ignore)]
    fn manually_share_arc() {
        let v = vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
        let arc_v = Cc::new(v);

        let (tx, rx) = channel();

        let _t = thread::spawn(move || {
            let arc_v: Cc<Vec<i32>> = rx.recv().unwrap();
            assert_eq!((*arc_v)[3], 4);
        });

        tx.send(arc_v.clone()).unwrap();

        assert_eq!((*arc_v)[2], 3);
        assert_eq!((*arc_v)[4], 5);
    }

    #[test]
    fn test_arc_get_mut() {
        let mut x = Cc::new(3);
        *Cc::get_mut(&mut x).unwrap() = 4;
        assert_eq!(*x, 4);
        let y = x.clone();
        assert!(Cc::get_mut(&mut x).is_none());
        drop(y);
        assert!(Cc::get_mut(&mut x).is_some());
        let _w = Cc::downgrade(&x);
        assert!(Cc::get_mut(&mut x).is_none());
    }

    #[test]
    fn weak_counts() {
        assert_eq!(Weak::weak_count(&Weak::<u64>::new()), 0);
        assert_eq!(Weak::strong_count(&Weak::<u64>::new()), 0);

        let a = Cc::new(0);
        let w = Cc::downgrade(&a);
        assert_eq!(Weak::strong_count(&w), 1);
        assert_eq!(Weak::weak_count(&w), 1);
        let w2 = w.clone();
        assert_eq!(Weak::strong_count(&w), 1);
        assert_eq!(Weak::weak_count(&w), 2);
        assert_eq!(Weak::strong_count(&w2), 1);
        assert_eq!(Weak::weak_count(&w2), 2);
        drop(w);
        assert_eq!(Weak::strong_count(&w2), 1);
        assert_eq!(Weak::weak_count(&w2), 1);
        let a2 = a.clone();
        assert_eq!(Weak::strong_count(&w2), 2);
        assert_eq!(Weak::weak_count(&w2), 1);
        drop(a2);
        drop(a);
        assert_eq!(Weak::strong_count(&w2), 0);
        assert_eq!(Weak::weak_count(&w2), 0);
        drop(w2);
    }

    #[test]
    fn try_unwrap() {
        let x = Cc::new(3);
        assert_eq!(Cc::try_unwrap(x), Ok(3));
        let x = Cc::new(4);
        let _y = x.clone();
        assert_eq!(Cc::try_unwrap(x), Err(Cc::new(4)));
        let x = Cc::new(5);
        let _w = Cc::downgrade(&x);
        assert_eq!(Cc::try_unwrap(x), Ok(5));
    }

    #[test]
    #[cfg_attr(any(target_os = "emscripten", target_os = "wasi"), ignore)] // no threads
    fn into_inner() {
        for _ in 0..100
        // ^ Increase chances of hitting potential race conditions
        {
            let x = Cc::new(3);
            let y = Cc::clone(&x);
            let r_thread = std::thread::spawn(|| Cc::into_inner(x));
            let s_thread = std::thread::spawn(|| Cc::into_inner(y));
            let r = r_thread.join().expect("r_thread panicked");
            let s = s_thread.join().expect("s_thread panicked");
            assert!(
                matches!((r, s), (None, Some(3)) | (Some(3), None)),
                "assertion failed: unexpected result `{:?}`\
            \n  expected `(None, Some(3))` or `(Some(3), None)`",
                (r, s),
            );
        }

        let x = Cc::new(3);
        assert_eq!(Cc::into_inner(x), Some(3));

        let x = Cc::new(4);
        let y = Cc::clone(&x);
        assert_eq!(Cc::into_inner(x), None);
        assert_eq!(Cc::into_inner(y), Some(4));

        let x = Cc::new(5);
        let _w = Cc::downgrade(&x);
        assert_eq!(Cc::into_inner(x), Some(5));
    }

    #[test]
    fn into_from_raw() {
        let x = Cc::new(Box::new("hello"));
        let y = x.clone();

        let x_ptr = Cc::into_raw(x);
        drop(y);
        unsafe {
            assert_eq!(**x_ptr, "hello");

            let x = Cc::from_raw(x_ptr);
            assert_eq!(**x, "hello");

            assert_eq!(Cc::try_unwrap(x).map(|x| *x), Ok("hello"));
        }
    }

    #[test]
    fn test_into_from_raw_unsized() {
        use std::fmt::Display;
        use std::string::ToString;

        let arc: Cc<str> = Cc::from("foo");

        let ptr = Cc::into_raw(arc.clone());
        let arc2 = unsafe { Cc::from_raw(ptr) };

        assert_eq!(unsafe { &*ptr }, "foo");
        assert_eq!(arc, arc2);

        // port: the unsizing coercion.
        let arc: Cc<dyn Display> = arcycle::coerce!(Cc::new(123));

        let ptr = Cc::into_raw(arc.clone());
        let arc2 = unsafe { Cc::from_raw(ptr) };

        assert_eq!(unsafe { &*ptr }.to_string(), "123");
        assert_eq!(arc2.to_string(), "123");
    }

    #[test]
    fn into_from_weak_raw() {
        let x = Cc::new(Box::new("hello"));
        let y = Cc::downgrade(&x);

        let y_ptr = Weak::into_raw(y);
        unsafe {
            assert_eq!(**y_ptr, "hello");

            let y = Weak::from_raw(y_ptr);
            let y_up = Weak::upgrade(&y).unwrap();
            assert_eq!(**y_up, "hello");
            drop(y_up);

            assert_eq!(Cc::try_unwrap(x).map(|x| *x), Ok("hello"));
        }
    }

    #[test]
    fn test_into_from_weak_raw_unsized() {
        use std::fmt::Display;
        use std::string::ToString;

        let arc: Cc<str> = Cc::from("foo");
        let weak: Weak<str> = Cc::downgrade(&arc);

        let ptr = Weak::into_raw(weak.clone());
        let weak2 = unsafe { Weak::from_raw(ptr) };

        assert_eq!(unsafe { &*ptr }, "foo");
        assert!(weak.ptr_eq(&weak2));

        // port: the unsizing coercion.
        let arc: Cc<dyn Display> = arcycle::coerce!(Cc::new(123));
        let weak: Weak<dyn Display> = Cc::downgrade(&arc);

        let ptr = Weak::into_raw(weak.clone());
        let weak2 = unsafe { Weak::from_raw(ptr) };

        assert_eq!(unsafe { &*ptr }.to_string(), "123");
        assert!(weak.ptr_eq(&weak2));
    }

    #[test]
    fn test_cowarc_clone_make_mut() {
        let mut cow0 = Cc::new(75);
        let mut cow1 = cow0.clone();
        let mut cow2 = cow1.clone();

        assert!(75 == *Cc::make_mut(&mut cow0));
        assert!(75 == *Cc::make_mut(&mut cow1));
        assert!(75 == *Cc::make_mut(&mut cow2));

        *Cc::make_mut(&mut cow0) += 1;
        *Cc::make_mut(&mut cow1) += 2;
        *Cc::make_mut(&mut cow2) += 3;

        assert!(76 == *cow0);
        assert!(77 == *cow1);
        assert!(78 == *cow2);

        // none should point to the same backing memory
        assert!(*cow0 != *cow1);
        assert!(*cow0 != *cow2);
        assert!(*cow1 != *cow2);
    }

    #[test]
    fn test_cowarc_clone_unique2() {
        let mut cow0 = Cc::new(75);
        let cow1 = cow0.clone();
        let cow2 = cow1.clone();

        assert!(75 == *cow0);
        assert!(75 == *cow1);
        assert!(75 == *cow2);

        *Cc::make_mut(&mut cow0) += 1;
        assert!(76 == *cow0);
        assert!(75 == *cow1);
        assert!(75 == *cow2);

        // cow1 and cow2 should share the same contents
        // cow0 should have a unique reference
        assert!(*cow0 != *cow1);
        assert!(*cow0 != *cow2);
        assert!(*cow1 == *cow2);
    }

    #[test]
    fn test_cowarc_clone_weak() {
        let mut cow0 = Cc::new(75);
        let cow1_weak = Cc::downgrade(&cow0);

        assert!(75 == *cow0);
        assert!(75 == *cow1_weak.upgrade().unwrap());

        *Cc::make_mut(&mut cow0) += 1;

        assert!(76 == *cow0);
        assert!(cow1_weak.upgrade().is_none());
    }

    #[test]
    fn test_live() {
        let x = Cc::new(5);
        let y = Cc::downgrade(&x);
        assert!(y.upgrade().is_some());
    }

    #[test]
    fn test_dead() {
        let x = Cc::new(5);
        let y = Cc::downgrade(&x);
        drop(x);
        assert!(y.upgrade().is_none());
    }

    #[test]
    fn weak_self_cyclic() {
        // port: derives `Trace`.
        #[derive(Trace)]
        struct Cycle {
            x: Mutex<Option<Weak<Cycle>>>,
        }

        let a = Cc::new(Cycle {
            x: Mutex::new(None),
        });
        let b = Cc::downgrade(&a.clone());
        *a.x.lock().unwrap() = Some(b);

        // hopefully we don't double-free (or leak)...
    }

    #[test]
    fn drop_arc() {
        let mut canary = AtomicUsize::new(0);
        let x = Cc::new(Canary(&mut canary as *mut AtomicUsize));
        drop(x);
        assert!(canary.load(Acquire) == 1);
    }

    #[test]
    fn drop_arc_weak() {
        let mut canary = AtomicUsize::new(0);
        let arc = Cc::new(Canary(&mut canary as *mut AtomicUsize));
        let arc_weak = Cc::downgrade(&arc);
        assert!(canary.load(Acquire) == 0);
        drop(arc);
        assert!(canary.load(Acquire) == 1);
        drop(arc_weak);
    }

    #[test]
    fn test_strong_count() {
        let a = Cc::new(0);
        assert!(Cc::strong_count(&a) == 1);
        let w = Cc::downgrade(&a);
        assert!(Cc::strong_count(&a) == 1);
        let b = w.upgrade().expect("");
        assert!(Cc::strong_count(&b) == 2);
        assert!(Cc::strong_count(&a) == 2);
        drop(w);
        drop(a);
        assert!(Cc::strong_count(&b) == 1);
        let c = b.clone();
        assert!(Cc::strong_count(&b) == 2);
        assert!(Cc::strong_count(&c) == 2);
    }

    #[test]
    fn test_weak_count() {
        let a = Cc::new(0);
        assert!(Cc::strong_count(&a) == 1);
        assert!(Cc::weak_count(&a) == 0);
        let w = Cc::downgrade(&a);
        assert!(Cc::strong_count(&a) == 1);
        assert!(Cc::weak_count(&a) == 1);
        let x = w.clone();
        assert!(Cc::weak_count(&a) == 2);
        drop(w);
        drop(x);
        assert!(Cc::strong_count(&a) == 1);
        assert!(Cc::weak_count(&a) == 0);
        let c = a.clone();
        assert!(Cc::strong_count(&a) == 2);
        assert!(Cc::weak_count(&a) == 0);
        let d = Cc::downgrade(&c);
        assert!(Cc::weak_count(&c) == 1);
        assert!(Cc::strong_count(&c) == 2);

        drop(a);
        drop(c);
        drop(d);
    }

    #[test]
    fn show_arc() {
        let a = Cc::new(5);
        assert_eq!(format!("{a:?}"), "5");
    }

    // Make sure deriving works with Arc<T>
    #[derive(Eq, Ord, PartialEq, PartialOrd, Clone, Debug, Default)]
    struct _Foo {
        inner: Cc<i32>,
    }

    #[test]
    fn test_unsized() {
        // port: the unsizing coercion.
        let x: Cc<[i32]> = arcycle::coerce!(Cc::new([1, 2, 3]));
        assert_eq!(format!("{x:?}"), "[1, 2, 3]");
        let y = Cc::downgrade(&x.clone());
        drop(x);
        assert!(y.upgrade().is_none());
    }

    #[test]
    fn test_maybe_thin_unsized() {
        // If/when custom thin DSTs exist, this test should be updated to use one
        use std::ffi::CStr;

        let x: Cc<CStr> = Cc::from(c"swordfish");
        assert_eq!(format!("{x:?}"), "\"swordfish\"");
        let y: Weak<CStr> = Cc::downgrade(&x);
        drop(x);

        // At this point, the weak points to a dropped DST
        assert!(y.upgrade().is_none());
        // But we still need to be able to get the alloc layout to drop.
        // CStr has no drop glue, but custom DSTs might, and need to work.
        drop(y);
    }

    #[test]
    fn test_from_owned() {
        let foo = 123;
        let foo_arc = Cc::from(foo);
        assert!(123 == *foo_arc);
    }

    #[test]
    fn test_new_weak() {
        let foo: Weak<usize> = Weak::new();
        assert!(foo.upgrade().is_none());
    }

    #[test]
    fn test_ptr_eq() {
        let five = Cc::new(5);
        let same_five = five.clone();
        let other_five = Cc::new(5);

        assert!(Cc::ptr_eq(&five, &same_five));
        assert!(!Cc::ptr_eq(&five, &other_five));
    }

    #[test]
    #[cfg_attr(target_os = "emscripten", ignore)]
    fn test_weak_count_locked() {
        let mut a = Cc::new(atomic::AtomicBool::new(false));
        let a2 = a.clone();
        let t = thread::spawn(move || {
            // Miri is too slow
            let count = if cfg!(miri) { 1000 } else { 1000000 };
            for _i in 0..count {
                Cc::get_mut(&mut a);
            }
            a.store(true, SeqCst);
        });

        while !a2.load(SeqCst) {
            let n = Cc::weak_count(&a2);
            assert!(n < 2, "bad weak count: {}", n);
            #[cfg(miri)] // Miri's scheduler does not guarantee liveness, and thus needs this hint.
            std::hint::spin_loop();
        }
        t.join().unwrap();
    }

    #[test]
    fn test_from_str() {
        let r: Cc<str> = Cc::from("foo");

        assert_eq!(&r[..], "foo");
    }

    #[test]
    fn test_copy_from_slice() {
        let s: &[u32] = &[1, 2, 3];
        let r: Cc<[u32]> = Cc::from(s);

        assert_eq!(&r[..], [1, 2, 3]);
    }

    #[test]
    fn test_clone_from_slice() {
        // port: derives `Trace`.
        #[derive(Clone, Debug, Eq, PartialEq, Trace)]
        struct X(u32);

        let s: &[X] = &[X(1), X(2), X(3)];
        let r: Cc<[X]> = Cc::from(s);

        assert_eq!(&r[..], s);
    }

    #[test]
    #[should_panic]
    fn test_clone_from_slice_panic() {
        use std::string::{String, ToString};

        // port: derives `Trace`.
        #[derive(Trace)]
        struct Fail(u32, String);

        impl Clone for Fail {
            fn clone(&self) -> Fail {
                if self.0 == 2 {
                    panic!();
                }
                Fail(self.0, self.1.clone())
            }
        }

        let s: &[Fail] = &[
            Fail(0, "foo".to_string()),
            Fail(1, "bar".to_string()),
            Fail(2, "baz".to_string()),
        ];

        // Should panic, but not cause memory corruption
        let _r: Cc<[Fail]> = Cc::from(s);
    }

    #[test]
    fn test_from_box() {
        let b: Box<u32> = Box::new(123);
        let r: Cc<u32> = Cc::from(b);

        assert_eq!(*r, 123);
    }

    #[test]
    fn test_from_box_str() {
        use std::string::String;

        let s = String::from("foo").into_boxed_str();
        let r: Cc<str> = Cc::from(s);

        assert_eq!(&r[..], "foo");
    }

    #[test]
    fn test_from_box_slice() {
        let s = vec![1, 2, 3].into_boxed_slice();
        let r: Cc<[u32]> = Cc::from(s);

        assert_eq!(&r[..], [1, 2, 3]);
    }

    #[test]
    fn test_from_box_trait() {
        use std::string::ToString;

        // port: `dyn Display` with the bounds `From<Box<T>>` needs.
        trait Display: std::fmt::Display + Trace + Send + Sync {}
        impl<T: std::fmt::Display + Trace + Send + Sync> Display for T {}

        let b: Box<dyn Display> = Box::new(123);
        let r: Cc<dyn Display> = Cc::from(b);

        assert_eq!(r.to_string(), "123");
    }

    #[test]
    fn test_from_box_trait_zero_sized() {
        // port: `dyn Debug` with the bounds `From<Box<T>>` needs.
        trait Debug: std::fmt::Debug + Trace + Send + Sync {}
        impl<T: std::fmt::Debug + Trace + Send + Sync> Debug for T {}

        let b: Box<dyn Debug> = Box::new(());
        let r: Cc<dyn Debug> = Cc::from(b);

        assert_eq!(format!("{r:?}"), "()");
    }

    #[test]
    fn test_from_vec() {
        let v = vec![1, 2, 3];
        let r: Cc<[u32]> = Cc::from(v);

        assert_eq!(&r[..], [1, 2, 3]);
    }

    #[test]
    fn test_downcast() {
        use std::any::Any;

        // port: the unsizing coercions.
        let r1: Cc<dyn Any + Send + Sync> = arcycle::coerce!(Cc::new(i32::MAX));
        let r2: Cc<dyn Any + Send + Sync> = arcycle::coerce!(Cc::new("abc"));

        assert!(r1.clone().downcast::<u32>().is_err());

        let r1i32 = r1.downcast::<i32>();
        assert!(r1i32.is_ok());
        assert_eq!(r1i32.unwrap(), Cc::new(i32::MAX));

        assert!(r2.clone().downcast::<i32>().is_err());

        let r2str = r2.downcast::<&'static str>();
        assert!(r2str.is_ok());
        assert_eq!(r2str.unwrap(), Cc::new("abc"));
    }

    #[test]
    fn test_array_from_slice() {
        let v = vec![1, 2, 3];
        let r: Cc<[u32]> = Cc::from(v);

        let a: Result<Cc<[u32; 3]>, _> = r.clone().try_into();
        assert!(a.is_ok());

        let a: Result<Cc<[u32; 2]>, _> = r.clone().try_into();
        assert!(a.is_err());
    }

    #[test]
    fn test_arc_cyclic_with_zero_refs() {
        // port: derives `Trace`.
        #[derive(Trace)]
        struct ZeroRefs {
            inner: Weak<ZeroRefs>,
        }
        let zero_refs = Cc::new_cyclic(|inner| {
            assert_eq!(inner.strong_count(), 0);
            assert!(inner.upgrade().is_none());
            ZeroRefs { inner: Weak::new() }
        });

        assert_eq!(Cc::strong_count(&zero_refs), 1);
        assert_eq!(Cc::weak_count(&zero_refs), 0);
        assert_eq!(zero_refs.inner.strong_count(), 0);
        assert_eq!(zero_refs.inner.weak_count(), 0);
    }

    #[test]
    fn test_arc_new_cyclic_one_ref() {
        // port: derives `Trace`.
        #[derive(Trace)]
        struct OneRef {
            inner: Weak<OneRef>,
        }
        let one_ref = Cc::new_cyclic(|inner| {
            assert_eq!(inner.strong_count(), 0);
            assert!(inner.upgrade().is_none());
            OneRef {
                inner: inner.clone(),
            }
        });

        assert_eq!(Cc::strong_count(&one_ref), 1);
        assert_eq!(Cc::weak_count(&one_ref), 1);

        let one_ref2 = Weak::upgrade(&one_ref.inner).unwrap();
        assert!(Cc::ptr_eq(&one_ref, &one_ref2));

        assert_eq!(Cc::strong_count(&one_ref), 2);
        assert_eq!(Cc::weak_count(&one_ref), 1);
    }

    #[test]
    fn test_arc_cyclic_two_refs() {
        // port: derives `Trace`.
        #[derive(Trace)]
        struct TwoRefs {
            inner1: Weak<TwoRefs>,
            inner2: Weak<TwoRefs>,
        }
        let two_refs = Cc::new_cyclic(|inner| {
            assert_eq!(inner.strong_count(), 0);
            assert!(inner.upgrade().is_none());

            let inner1 = inner.clone();
            let inner2 = inner1.clone();

            TwoRefs { inner1, inner2 }
        });

        assert_eq!(Cc::strong_count(&two_refs), 1);
        assert_eq!(Cc::weak_count(&two_refs), 2);

        let two_refs1 = Weak::upgrade(&two_refs.inner1).unwrap();
        assert!(Cc::ptr_eq(&two_refs, &two_refs1));

        let two_refs2 = Weak::upgrade(&two_refs.inner2).unwrap();
        assert!(Cc::ptr_eq(&two_refs, &two_refs2));

        assert_eq!(Cc::strong_count(&two_refs), 3);
        assert_eq!(Cc::weak_count(&two_refs), 2);
    }

    /// Test for Arc::drop bug (https://github.com/rust-lang/rust/issues/55005)
    #[test]
    #[cfg(miri)] // relies on Stacked Borrows in Miri
    fn arc_drop_dereferenceable_race() {
        // The bug seems to take up to 700 iterations to reproduce with most seeds (tested 0-9).
        for _ in 0..750 {
            let arc_1 = Cc::new(());
            let arc_2 = arc_1.clone();
            let thread = thread::spawn(|| drop(arc_2));
            // Spin a bit; makes the race more likely to appear
            let mut i = 0;
            while i < 256 {
                i += 1;
            }
            drop(arc_1);
            thread.join().unwrap();
        }
    }
}

mod arc {
    use arcycle::{Cc, Trace, Weak};
    use std::any::Any;
    use std::sync::Mutex;

    #[test]
    fn uninhabited() {
        // port: derives `Trace` (an empty enum).
        #[derive(Trace)]
        enum Void {}
        let mut a = Weak::<Void>::new();
        a = a.clone();
        assert!(a.upgrade().is_none());

        let mut a: Weak<dyn Any> = arcycle::coerce_weak!(a); // Unsizing
        a = a.clone();
        assert!(a.upgrade().is_none());
    }

    #[test]
    fn slice() {
        let a: Cc<[u32; 3]> = Cc::new([3, 2, 1]);
        let a: Cc<[u32]> = arcycle::coerce!(a); // Unsizing
        let b: Cc<[u32]> = Cc::from(&[3, 2, 1][..]); // Conversion
        assert_eq!(a, b);

        // Exercise is_dangling() with a DST
        let mut a = Cc::downgrade(&a);
        a = a.clone();
        assert!(a.upgrade().is_some());
    }

    #[test]
    fn trait_object() {
        let a: Cc<u32> = Cc::new(4);
        let a: Cc<dyn Any> = arcycle::coerce!(a); // Unsizing

        // Exercise is_dangling() with a DST
        let mut a = Cc::downgrade(&a);
        a = a.clone();
        assert!(a.upgrade().is_some());

        let mut b = Weak::<u32>::new();
        b = b.clone();
        assert!(b.upgrade().is_none());
        let mut b: Weak<dyn Any> = arcycle::coerce_weak!(b); // Unsizing
        b = b.clone();
        assert!(b.upgrade().is_none());
    }

    #[test]
    #[allow(clippy::eq_op)] // port: the point of the test.
    fn float_nan_ne() {
        let x = Cc::new(f32::NAN);
        assert!(x != x);
        assert!(!(x == x));
    }

    #[test]
    #[allow(clippy::eq_op, clippy::nonminimal_bool)] // port: the point of the test.
    fn partial_eq() {
        // port: `Cc::new` needs `Sync`: a `Mutex` where `std` has a
        // `RefCell` (each guard, like each `borrow_mut`, ends with its
        // statement); derives `Trace`.
        #[derive(Trace)]
        struct TestPEq(Mutex<usize>);
        impl PartialEq for TestPEq {
            fn eq(&self, other: &TestPEq) -> bool {
                *self.0.lock().unwrap() += 1;
                *other.0.lock().unwrap() += 1;
                true
            }
        }
        let x = Cc::new(TestPEq(Mutex::new(0)));
        assert!(x == x);
        assert!(!(x != x));
        assert_eq!(*x.0.lock().unwrap(), 4);
    }

    // The test code below is identical to that in `rc.rs`.
    // For better maintainability we therefore define this type alias.
    // port: without the allocator parameter.
    type Rc<T> = Cc<T>;

    const SHARED_ITER_MAX: u16 = 100;

    #[test]
    fn shared_from_iter_normal() {
        // Exercise the base implementation for non-`TrustedLen` iterators.
        {
            // `Filter` is never `TrustedLen` since we don't
            // know statically how many elements will be kept:
            let iter = (0..SHARED_ITER_MAX).filter(|x| x % 2 == 0).map(Box::new);

            // Collecting into a `Vec<T>` or `Rc<[T]>` should make no difference:
            let vec = iter.clone().collect::<Vec<_>>();
            let rc = iter.collect::<Rc<[_]>>();
            assert_eq!(&*vec, &*rc);

            // Clone a bit and let these get dropped.
            {
                let _rc_2 = rc.clone();
                let _rc_3 = rc.clone();
                let _rc_4 = Rc::downgrade(&_rc_3);
            }
        } // Drop what hasn't been here.
    }

    #[test]
    fn shared_from_iter_trustedlen_normal() {
        // Exercise the `TrustedLen` implementation under normal circumstances
        // where `size_hint()` matches `(_, Some(exact_len))`.
        {
            let iter = (0..SHARED_ITER_MAX).map(Box::new);
            // port: `assert_trusted_len(&iter);` (unstable `TrustedLen`).

            // Collecting into a `Vec<T>` or `Rc<[T]>` should make no difference:
            let vec = iter.clone().collect::<Vec<_>>();
            let rc = iter.collect::<Rc<[_]>>();
            assert_eq!(&*vec, &*rc);
            assert_eq!(
                size_of::<Box<u16>>() * SHARED_ITER_MAX as usize,
                size_of_val(&*rc)
            );

            // Clone a bit and let these get dropped.
            {
                let _rc_2 = rc.clone();
                let _rc_3 = rc.clone();
                let _rc_4 = Rc::downgrade(&_rc_3);
            }
        } // Drop what hasn't been here.

        // Try a ZST to make sure it is handled well.
        {
            let iter = (0..SHARED_ITER_MAX).map(drop);
            let vec = iter.clone().collect::<Vec<_>>();
            let rc = iter.collect::<Rc<[_]>>();
            assert_eq!(&*vec, &*rc);
            assert_eq!(0, size_of_val(&*rc));
            {
                let _rc_2 = rc.clone();
                let _rc_3 = rc.clone();
                let _rc_4 = Rc::downgrade(&_rc_3);
            }
        }
    }

    #[test]
    #[should_panic = "I've almost got 99 problems."]
    fn shared_from_iter_trustedlen_panic() {
        // Exercise the `TrustedLen` implementation when `size_hint()` matches
        // `(_, Some(exact_len))` but where `.next()` drops before the last iteration.
        let iter = (0..SHARED_ITER_MAX).map(|val| match val {
            98 => panic!("I've almost got 99 problems."),
            _ => Box::new(val),
        });
        // port: `assert_trusted_len(&iter);` (unstable `TrustedLen`).
        let _ = iter.collect::<Rc<[_]>>();

        panic!("I am unreachable.");
    }

    #[test]
    fn shared_from_iter_trustedlen_no_fuse() {
        // Exercise the `TrustedLen` implementation when `size_hint()` matches
        // `(_, Some(exact_len))` but where the iterator does not behave in a fused manner.
        struct Iter(std::vec::IntoIter<Option<Box<u8>>>);

        // port: `unsafe impl TrustedLen for Iter {}` (unstable `TrustedLen`).

        impl Iterator for Iter {
            fn size_hint(&self) -> (usize, Option<usize>) {
                (2, Some(2))
            }

            type Item = Box<u8>;

            fn next(&mut self) -> Option<Self::Item> {
                self.0.next().flatten()
            }
        }

        let vec = vec![
            Some(Box::new(42)),
            Some(Box::new(24)),
            None,
            Some(Box::new(12)),
        ];
        let iter = Iter(vec.into_iter());
        // port: `assert_trusted_len(&iter);` (unstable `TrustedLen`).
        assert_eq!(&[Box::new(42), Box::new(24)], &*iter.collect::<Rc<[_]>>());
    }

    /// This is similar to the doc-test for `Arc::make_mut()`, but on an unsized type (slice).
    #[test]
    fn make_mut_unsized() {
        // port: the unsizing coercion.
        let mut data: Cc<[i32]> = arcycle::coerce!(Cc::new([10, 20, 30]));

        Cc::make_mut(&mut data)[0] += 1; // Won't clone anything
        let mut other_data = Cc::clone(&data); // Won't clone inner data
        Cc::make_mut(&mut data)[1] += 1; // Clones inner data
        Cc::make_mut(&mut data)[2] += 1; // Won't clone anything
        Cc::make_mut(&mut other_data)[0] *= 10; // Won't clone anything

        // Now `data` and `other_data` point to different allocations.
        assert_eq!(*data, [11, 21, 31]);
        assert_eq!(*other_data, [110, 20, 30]);
    }
}
