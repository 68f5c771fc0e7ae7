//! Pipes between a parent and the child it spawns.
//!
//! The parent calls [`spawn`], which starts the child with its stdin and
//! stdout connected to two pipes; the child calls
//! [`connect("pipe")`](crate::connect), which takes over its stdin (to
//! receive) and stdout (to send) and points descriptors 0 and 1 at
//! `/dev/null`, so that a stray `print!` cannot corrupt the stream. Both
//! sides then hold a [`Channel`] framed as on a stream socket, and exchange
//! hellos first.
//!
//! A child that inherits other descriptors can use `pipe:RFD,WFD` instead.

use std::os::fd::OwnedFd;
use std::process::{Child, Command, Stdio};

use super::stream::StreamChannel;
use crate::channel::Channel;
use crate::error::{Error, Result};
use crate::options::Options;

/// Spawns `command` with its stdin and stdout on pipes, exchanges hellos
/// with it (the child must call `shmsg::connect("pipe")` within
/// `options.timeout`), and returns the channel to the child and the child.
///
/// If the handshake fails the child is killed and reaped.
///
/// The parent and the child are two processes, so this example is not run:
///
/// ```no_run
/// // The parent:
/// use std::process::Command;
/// use shmsg::{Options, Receiver, Sender};
///
/// let (mut channel, mut child) =
///     shmsg::msg::pipe::spawn(&mut Command::new("./worker"), &Options::default())?;
/// channel.send(b"job")?;
/// let mut result = Vec::new();
/// channel.recv(&mut result)?;
/// drop(channel); // the child sees Disconnected, and exits
/// child.wait().unwrap();
/// # Ok::<(), shmsg::Error>(())
/// ```
///
/// ```no_run
/// // The child, `./worker`:
/// use shmsg::{Error, Receiver, Sender};
///
/// let mut channel = shmsg::connect("pipe")?;
/// let mut job = Vec::new();
/// loop {
///     match channel.recv(&mut job) {
///         Ok(_) => channel.send(&job)?, // the work
///         Err(Error::Disconnected) => break,
///         Err(other) => return Err(other),
///     }
/// }
/// # Ok::<(), shmsg::Error>(())
/// ```
pub fn spawn(command: &mut Command, options: &Options) -> Result<(Channel, Child)> {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| Error::io(format!("cannot spawn {:?}", command.get_program()), e))?;
    let pipes = child.stdin.take().zip(child.stdout.take());
    let Some((to_child, from_child)) = pipes else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(Error::io(
            "the child's pipes were not created",
            std::io::ErrorKind::Other,
        ));
    };
    let max = options
        .max_message
        .unwrap_or(crate::options::DEFAULT_MAX_MESSAGE);
    match StreamChannel::handshake_split(
        OwnedFd::from(from_child),
        OwnedFd::from(to_child),
        max,
        options.timeout,
    ) {
        Ok(channel) => {
            let (tx, rx) = channel.split();
            Ok((Channel::new(tx, rx), child))
        }
        Err(error) => {
            let _ = child.kill();
            let _ = child.wait();
            Err(error)
        }
    }
}
