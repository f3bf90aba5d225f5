//! A short string formatted on the stack (the time of each record, compared once per event).

/// A short string formatted without allocating.
pub(super) struct StackStr {
    buf: [u8; 64],
    len: usize,
    pub(super) overflow: Option<String>,
}

impl StackStr {
    pub(super) fn new() -> Self {
        StackStr {
            buf: [0; 64],
            len: 0,
            overflow: None,
        }
    }

    pub(super) fn as_str(&self) -> &str {
        match &self.overflow {
            Some(s) => s,
            // Only whole `&str`s are ever copied in, so this cannot fail.
            None => std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default(),
        }
    }
}

impl std::fmt::Write for StackStr {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        let dst = self.buf.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}
