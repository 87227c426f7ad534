//! The orders a [`Queue`](super::BaseQueue) can keep: FIFO, LIFO and smallest-first.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

/// How a [`Queue`](super::BaseQueue) stores its items and which comes out next: [`Fifo`],
/// [`Lifo`] or [`Priority`]. Sealed: the three are all there is.
pub trait Order<T>: sealed::Sealed {
    /// Where the items wait.
    #[doc(hidden)]
    type Store: Default;
    #[doc(hidden)]
    fn push(store: &mut Self::Store, item: T);
    #[doc(hidden)]
    fn pop(store: &mut Self::Store) -> Option<T>;
    #[doc(hidden)]
    fn len(store: &Self::Store) -> usize;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Fifo {}
    impl Sealed for super::Lifo {}
    impl Sealed for super::Priority {}
}

/// First in, first out: [`Queue`](super::Queue).
#[derive(Debug)]
pub struct Fifo;

/// Last in, first out: [`LifoQueue`](super::LifoQueue).
#[derive(Debug)]
pub struct Lifo;

/// Smallest first: [`PriorityQueue`](super::PriorityQueue).
#[derive(Debug)]
pub struct Priority;

impl<T> Order<T> for Fifo {
    type Store = VecDeque<T>;
    fn push(store: &mut VecDeque<T>, item: T) {
        store.push_back(item);
    }
    fn pop(store: &mut VecDeque<T>) -> Option<T> {
        store.pop_front()
    }
    fn len(store: &VecDeque<T>) -> usize {
        store.len()
    }
}

impl<T> Order<T> for Lifo {
    type Store = Vec<T>;
    fn push(store: &mut Vec<T>, item: T) {
        store.push(item);
    }
    fn pop(store: &mut Vec<T>) -> Option<T> {
        store.pop()
    }
    fn len(store: &Vec<T>) -> usize {
        store.len()
    }
}

impl<T: Ord> Order<T> for Priority {
    type Store = BinaryHeap<Reverse<T>>;
    fn push(store: &mut BinaryHeap<Reverse<T>>, item: T) {
        store.push(Reverse(item));
    }
    fn pop(store: &mut BinaryHeap<Reverse<T>>) -> Option<T> {
        store.pop().map(|Reverse(item)| item)
    }
    fn len(store: &BinaryHeap<Reverse<T>>) -> usize {
        store.len()
    }
}
