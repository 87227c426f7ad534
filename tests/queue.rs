//! `ringloop::queue`: asyncio's Queue, LifoQueue and PriorityQueue — order, `maxsize`, the
//! `_nowait` errors, `task_done`/`join`, Python 3.13's `shutdown`, and no item lost or doubled
//! when gets and puts are cancelled.

mod support;

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::rc::Rc;
use std::time::Duration;

use ringloop::queue::{
    GetNowaitError, LifoQueue, PriorityQueue, PutNowaitError, Queue, QueueShutDown,
    TaskDoneTooManyTimes,
};
use ringloop::{spawn, time, yield_now};

both_backends! {
    /// FIFO, LIFO and smallest-first order; `qsize`, `empty`, `full`.
    fn the_three_orders(rt) {
        rt.block_on(async {
            let fifo = Queue::new(0);
            let lifo = LifoQueue::new(0);
            let prio = PriorityQueue::new(0);
            for n in [3, 1, 2] {
                fifo.put(n).await.unwrap();
                lifo.put(n).await.unwrap();
                prio.put(n).await.unwrap();
            }
            assert_eq!((fifo.qsize(), fifo.empty(), fifo.full()), (3, false, false));
            let mut got = (Vec::new(), Vec::new(), Vec::new());
            for _ in 0..3 {
                got.0.push(fifo.get().await.unwrap());
                got.1.push(lifo.get().await.unwrap());
                got.2.push(prio.get().await.unwrap());
            }
            assert_eq!(got, (vec![3, 1, 2], vec![2, 1, 3], vec![1, 2, 3]));
            assert!(fifo.empty());
        });
    }

    /// A full queue refuses `put_nowait` (giving the item back) and makes `put` wait until a
    /// `get` frees a slot; an empty one refuses `get_nowait` and makes `get` wait for a `put`.
    fn maxsize_blocks_puts_and_empty_blocks_gets(rt) {
        let _wd = support::watchdog(
            Duration::from_secs(20),
            "maxsize_blocks_puts_and_empty_blocks_gets",
        );
        rt.block_on(async {
            let queue = Rc::new(Queue::new(2));
            assert_eq!(queue.get_nowait(), Err(GetNowaitError::QueueEmpty));
            queue.put_nowait(1).unwrap();
            queue.put(2).await.unwrap();
            assert!(queue.full());
            assert_eq!(queue.put_nowait(3), Err(PutNowaitError::QueueFull(3)));
            let putter = spawn({
                let queue = queue.clone();
                async move { queue.put(3).await }
            });
            support::yield_turns(5).await;
            assert!(!putter.is_finished(), "put waits while the queue is full");
            assert_eq!(queue.get().await, Ok(1));
            putter.await.unwrap().unwrap();
            assert_eq!(queue.qsize(), 2);

            let drained: Vec<_> = vec![queue.get().await.unwrap(), queue.get().await.unwrap()];
            assert_eq!(drained, [2, 3]);
            let getter = spawn({
                let queue = queue.clone();
                async move { queue.get().await }
            });
            support::yield_turns(5).await;
            assert!(!getter.is_finished(), "get waits while the queue is empty");
            queue.put(4).await.unwrap();
            assert_eq!(getter.await.unwrap(), Ok(4));
        });
    }

    /// `join` waits until every item put is marked done; one `task_done` too many is an error.
    fn task_done_and_join(rt) {
        let _wd = support::watchdog(Duration::from_secs(20), "task_done_and_join");
        rt.block_on(async {
            let queue = Rc::new(Queue::new(0));
            queue.join().await; // nothing pending
            assert_eq!(queue.task_done(), Err(TaskDoneTooManyTimes));
            for n in 0..3 {
                queue.put(n).await.unwrap();
            }
            let joined = Rc::new(Cell::new(false));
            let joiner = spawn({
                let (queue, joined) = (queue.clone(), joined.clone());
                async move {
                    queue.join().await;
                    joined.set(true);
                }
            });
            for _ in 0..3 {
                queue.get().await.unwrap();
                support::yield_turns(3).await;
                assert!(!joined.get(), "join returned before every item was done");
                queue.task_done().unwrap();
            }
            joiner.await.unwrap();
            assert!(joined.get());
            assert_eq!(queue.task_done(), Err(TaskDoneTooManyTimes));
        });
    }

    /// `shutdown(false)`: waiting putters get their item back, new puts are refused, getters
    /// take what is left and then get `QueueShutDown`; `shutdown(true)` drops what is left
    /// (counting it done for `join`) and fails waiting getters at once.
    fn shutdown_graceful_and_immediate(rt) {
        let _wd = support::watchdog(Duration::from_secs(20), "shutdown_graceful_and_immediate");
        rt.block_on(async {
            let queue = Rc::new(Queue::new(1));
            queue.put(1).await.unwrap();
            let putter = spawn({
                let queue = queue.clone();
                async move { queue.put(2).await }
            });
            support::yield_turns(3).await;
            queue.shutdown(false);
            assert!(matches!(putter.await.unwrap(), Err(QueueShutDown(2))));
            assert!(matches!(queue.put(3).await, Err(QueueShutDown(3))));
            assert_eq!(queue.put_nowait(4), Err(PutNowaitError::QueueShutDown(4)));
            assert_eq!(queue.get().await, Ok(1), "what was queued is still delivered");
            assert_eq!(queue.get().await, Err(QueueShutDown(())));
            assert_eq!(queue.get_nowait(), Err(GetNowaitError::QueueShutDown));

            let queue = Rc::new(Queue::new(0));
            let getters: Vec<_> = (0..3)
                .map(|_| {
                    let queue = queue.clone();
                    spawn(async move { queue.get().await })
                })
                .collect();
            support::yield_turns(3).await;
            queue.put_nowait("a").unwrap();
            queue.put_nowait("b").unwrap();
            queue.put_nowait("c").unwrap();
            queue.put_nowait("d").unwrap();
            queue.shutdown(true);
            assert!(queue.empty(), "shutdown(true) drops the items left");
            // The getters were woken by the puts but had not run: they find the queue
            // empty and shut down.
            for getter in getters {
                assert_eq!(getter.await.unwrap(), Err(QueueShutDown(())));
            }
            queue.join().await; // the dropped items count as done
        });
    }

    /// A getter woken for an item and cancelled before it runs leaves the item for the next
    /// getter; a put cancelled while waiting for room inserts nothing.
    fn cancelled_gets_and_puts_lose_and_add_nothing(rt) {
        let _wd = support::watchdog(
            Duration::from_secs(20),
            "cancelled_gets_and_puts_lose_and_add_nothing",
        );
        rt.block_on(async {
            let queue = Rc::new(Queue::new(1));
            let asked = Rc::new(Cell::new(0));
            let mut getters: Vec<_> = (0..2)
                .map(|_| {
                    let (queue, asked) = (queue.clone(), asked.clone());
                    spawn(async move {
                        asked.set(asked.get() + 1);
                        queue.get().await
                    })
                })
                .collect();
            support::yield_until("both getters wait", || asked.get() == 2).await;
            queue.put_nowait(7).unwrap(); // wakes getter 0 ...
            getters[0].cancel(); // ... which is cancelled before it runs
            assert!(getters.remove(0).await.unwrap_err().is_cancelled());
            assert_eq!(getters.remove(0).await.unwrap(), Ok(7));

            queue.put_nowait(8).unwrap();
            let put = time::timeout(Duration::from_millis(5), queue.put(9)).await;
            assert!(put.is_err(), "the put waited for room and was cut short");
            assert_eq!(queue.qsize(), 1);
            assert_eq!(queue.get().await, Ok(8));
            assert_eq!(queue.get_nowait(), Err(GetNowaitError::QueueEmpty));
        });
    }

    /// 1 000 producers and 1 000 consumers on a queue of 16, with puts and gets cut short by
    /// random timeouts and random consumers cancelled: every item put is received exactly once.
    fn producers_and_consumers_under_random_cancellation_deliver_exactly_once(rt) {
        let _wd = support::watchdog(
            Duration::from_secs(60),
            "producers_and_consumers_under_random_cancellation_deliver_exactly_once",
        );
        const SEED: u64 = 0x5EED_3003;
        rt.block_on(async {
            let queue = Rc::new(Queue::new(16));
            let rng = Rc::new(RefCell::new(support::Rng::new(SEED)));
            let put = Rc::new(RefCell::new(Vec::new()));
            let got = Rc::new(RefCell::new(Vec::new()));
            let cut_short = Rc::new(Cell::new(0u32));
            let producers: Vec<_> = (0..1000u32)
                .map(|p| {
                    let (queue, rng, put, cut_short) =
                        (queue.clone(), rng.clone(), put.clone(), cut_short.clone());
                    spawn(async move {
                        for i in 0..5u32 {
                            let item = p * 100 + i;
                            loop {
                                let wait = Duration::from_micros(rng.borrow_mut().below(400));
                                match time::timeout(wait, queue.put(item)).await {
                                    Ok(result) => {
                                        result.unwrap();
                                        put.borrow_mut().push(item);
                                        break;
                                    }
                                    // Cut short: nothing was inserted, so try again.
                                    Err(_) => cut_short.set(cut_short.get() + 1),
                                }
                            }
                        }
                    })
                })
                .collect();
            let consumers: Vec<_> = (0..1000)
                .map(|_| {
                    let (queue, rng, got, cut_short) =
                        (queue.clone(), rng.clone(), got.clone(), cut_short.clone());
                    spawn(async move {
                        loop {
                            let wait = Duration::from_micros(rng.borrow_mut().below(400));
                            match time::timeout(wait, queue.get()).await {
                                Ok(Ok(item)) => got.borrow_mut().push(item),
                                Ok(Err(QueueShutDown(()))) => return,
                                Err(_) => cut_short.set(cut_short.get() + 1),
                            }
                            if rng.borrow_mut().below(4) == 0 {
                                yield_now().await;
                            }
                        }
                    })
                })
                .collect();
            // Chaos: cancel 100 random consumers, wherever they are.
            let mut cancelled = HashSet::new();
            while cancelled.len() < 100 {
                let turns = rng.borrow_mut().below(10);
                for _ in 0..turns {
                    yield_now().await;
                }
                let victim = rng.borrow_mut().below(consumers.len() as u64) as usize;
                consumers[victim].cancel();
                cancelled.insert(victim);
            }
            for producer in producers {
                producer.await.unwrap();
            }
            queue.shutdown(false);
            for consumer in consumers {
                if let Err(e) = consumer.await {
                    assert!(e.is_cancelled(), "seed {SEED:#x}: {e}");
                }
            }
            let mut put = put.take();
            let mut got = got.take();
            assert_eq!(put.len(), 5000, "seed {SEED:#x}: every producer put all its items");
            put.sort_unstable();
            got.sort_unstable();
            assert_eq!(got, put, "seed {SEED:#x}: items lost or received twice");
            assert!(queue.empty());
            assert!(cut_short.get() > 0, "seed {SEED:#x}: nothing was cut short");
        });
    }
}
