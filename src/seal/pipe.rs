//! The hand-over of plaintext buffers between the two threads of sealing and opening.

use std::io::Write;

/// Size of the buffers that carry signed plaintext to the encrypting thread, and of the
/// reads from the plaintext: large enough that per-buffer costs vanish, small enough to
/// stay in the second-level cache between the two threads.
pub(super) const PIPE_BUFFER_BYTES: usize = 256 * 1024;
/// Buffers in flight between the two threads (memory is bounded by about twice this
/// many buffers).
pub(super) const PIPE_BUFFERS: usize = 4;

/// The writer at the bottom of the signing stack: it fills buffers and hands them to the
/// encrypting thread, taking emptied ones back so that no page is allocated (and cleared
/// by the kernel) per buffer.
pub(super) struct Pipe {
    pub(super) buf: Vec<u8>,
    pub(super) full: std::sync::mpsc::SyncSender<Option<Vec<u8>>>,
    /// Behind a mutex only because sequoia's writer stack must be `Sync`; one thread
    /// uses it.
    pub(super) empty: std::sync::Mutex<std::sync::mpsc::Receiver<Vec<u8>>>,
}

impl Pipe {
    fn hand_over(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let recycled = match self.empty.get_mut() {
            Ok(empty) => empty.try_recv().ok(),
            Err(_) => None,
        };
        let next = match recycled {
            Some(mut b) => {
                b.clear();
                b
            }
            None => Vec::with_capacity(PIPE_BUFFER_BYTES),
        };
        let full = std::mem::replace(&mut self.buf, next);
        self.full
            .send(Some(full))
            .map_err(|_| std::io::Error::other("the encrypting thread stopped"))
    }
}

impl Write for Pipe {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let room = PIPE_BUFFER_BYTES.saturating_sub(self.buf.len());
        if room == 0 {
            self.hand_over()?;
            return self.write(data);
        }
        let n = room.min(data.len());
        self.buf.extend_from_slice(&data[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        // Flushing would only make buffers smaller; the last one is handed over when the
        // signing stack lets go of the pipe.
        Ok(())
    }
}

impl Drop for Pipe {
    fn drop(&mut self) {
        // An error here means the encrypting thread has stopped, and it reports why.
        let _ = self.hand_over();
    }
}
