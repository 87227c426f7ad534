//! An op the io_uring kernel cancels without being asked is submitted again (see
//! `Driver::poll_op`). The kernel is made to do so for real: an op queued right after a linked
//! op that fails is cancelled by the kernel before it starts (`-ECANCELED`, link broken), as
//! io-wq cancels work it could not start on Linux 6.1 under signals. io_uring only: epoll has
//! no links and no io-wq.

use std::future::Future;
use std::io::Read as _;
use std::os::fd::AsRawFd;
use std::pin::pin;
use std::task::Poll;

use io_uring::{opcode, squeue, types::Fd};

use super::close::CloseCall;
use super::{Op, sealed::OperationImpl};
use crate::driver::{Completion, Describe, Syscall};

/// `close(-1)` linked to the next SQE: it fails with `EBADF`, so the kernel cancels the next.
struct FailingLinkHead;

impl Describe for FailingLinkHead {
    fn opcode(&self) -> u8 {
        opcode::Close::CODE
    }
    fn uring_entry(&mut self) -> squeue::Entry {
        opcode::Close::new(Fd(-1))
            .build()
            .flags(squeue::Flags::IO_LINK)
    }
    fn syscall(&mut self) -> Syscall {
        CloseCall(-1).syscall()
    }
}

impl OperationImpl for FailingLinkHead {
    type Output = i32;
    fn complete(self, done: Completion) -> i32 {
        done.result
    }
}

fn uring_runtime() -> Option<crate::Runtime> {
    let rt = crate::Runtime::builder()
        .backend(crate::Backend::IoUring)
        .build();
    match rt {
        Ok(rt) => Some(rt),
        // The test runs where io_uring does; where it is denied there is nothing to test.
        Err(e) => {
            eprintln!("io_uring unavailable, skipped: {e}");
            None
        }
    }
}

/// A write the kernel cancelled unasked is written once, not failed with `ECANCELED`.
#[test]
fn write_cancelled_by_a_broken_link_is_resubmitted_once() {
    let Some(rt) = uring_runtime() else { return };
    let (mut rx, tx) = std::io::pipe().unwrap();
    let (head, written) = rt.block_on(async {
        let mut head = pin!(Op::new(FailingLinkHead));
        let mut write = pin!(super::write(tx.as_raw_fd(), b"x".to_vec()));
        // Both SQEs go to the kernel in the same submission, the write linked behind the head.
        std::future::poll_fn(|cx| {
            assert!(head.as_mut().poll(cx).is_pending());
            assert!(write.as_mut().poll(cx).is_pending());
            Poll::Ready(())
        })
        .await;
        let head = head.await;
        let (written, _buf) = write.await;
        (head, written)
    });
    drop(rt);
    assert_eq!(head, -libc::EBADF, "the link head fails");
    assert_eq!(written.expect("the cancelled write is resubmitted"), 1);
    drop(tx);
    let mut got = Vec::new();
    rx.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"x", "written exactly once");
}

/// An op cancelled on request keeps its `ECANCELED`: only an unasked cancel is resubmitted.
#[test]
fn requested_cancel_is_not_resubmitted() {
    let Some(rt) = uring_runtime() else { return };
    let (rx, _tx) = std::io::pipe().unwrap();
    let res = rt.block_on(async {
        let mut read = super::read(rx.as_raw_fd(), Vec::with_capacity(8));
        std::future::poll_fn(|cx| {
            assert!(std::pin::Pin::new(&mut read).poll(cx).is_pending());
            Poll::Ready(())
        })
        .await;
        crate::yield_now().await;
        read.cancel().await.0
    });
    assert_eq!(res.unwrap_err().raw_os_error(), Some(libc::ECANCELED));
}
