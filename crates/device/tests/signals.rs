//! SIGTERM/SIGINT trigger the shared Cancel (its own test binary, since the
//! handlers stay installed for the life of the process).

use std::time::Duration;

use ferrotun_device::{install_shutdown_signals, Cancel, Epoll, Event, Interest};

#[test]
fn sigterm_and_sigint_trigger_cancel_and_wake_epoll() {
    for sig in [libc::SIGTERM, libc::SIGINT] {
        let cancel = Cancel::new().unwrap();
        install_shutdown_signals(&cancel).unwrap();
        let ep = Epoll::new().unwrap();
        ep.add(&cancel, 1, Interest::READABLE).unwrap();
        let waiter = {
            let cancel = cancel.clone();
            std::thread::spawn(move || cancel.wait(Some(Duration::from_secs(5))))
        };
        assert!(!cancel.is_triggered());
        // SAFETY: raise has no preconditions; the handler installed above
        // replaces the default action (termination).
        assert_eq!(unsafe { libc::raise(sig) }, 0);
        assert!(waiter.join().unwrap(), "signal {sig} did not trigger");
        let mut evs = [Event::EMPTY; 1];
        assert_eq!(ep.wait(&mut evs, Some(Duration::from_secs(5))).unwrap(), 1);
        assert_eq!(evs[0].token(), 1);
    }
}
