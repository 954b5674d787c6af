//! `n` parked threads for tests and benches of groups: each thread id has
//! its own `/proc/<tid>/stat` start time, so it is a live owner distinct
//! from every other (shared by `tests/groups_multiprocess.rs` and
//! `benches/groups.rs`).

use std::sync::mpsc;

/// `n` parked threads and their thread ids; joined on drop.
pub struct Threads {
    pub tids: Vec<u32>,
    stop: Vec<mpsc::Sender<()>>,
    handles: Vec<std::thread::JoinHandle<()>>,
}

impl Threads {
    pub fn spawn(n: usize) -> Threads {
        let (mut tids, mut stop, mut handles) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..n {
            let (tid_tx, tid_rx) = mpsc::channel();
            let (stop_tx, stop_rx) = mpsc::channel::<()>();
            handles.push(
                std::thread::Builder::new()
                    .stack_size(64 * 1024)
                    .spawn(move || {
                        let tid = rustix::thread::gettid().as_raw_nonzero().get() as u32;
                        tid_tx.send(tid).unwrap();
                        let _ = stop_rx.recv();
                    })
                    .unwrap(),
            );
            tids.push(tid_rx.recv().unwrap());
            stop.push(stop_tx);
        }
        Threads {
            tids,
            stop,
            handles,
        }
    }
}

impl Drop for Threads {
    fn drop(&mut self) {
        self.stop.clear();
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}
