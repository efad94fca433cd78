package cgapi

// SetSyncLimit lowers the size a sync page may have for c, so a test can
// exceed it without sending 64 MiB.
func SetSyncLimit(c *Client, n int64) { c.syncLimit = n }

// RedactForTest is the client's redaction of server text.
func RedactForTest(c *Client, s string) string { return c.tokens.red.redact(s) }
