package natstest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// PublishRawHeader publishes body on subject with header, the header
// section byte for byte ("NATS/1.0\r\n...\r\n\r\n"), and returns the
// stream sequence JetStream acknowledged. It speaks the client protocol
// itself over a connection of its own: nats.go will not build a malformed
// header section (a folded line, say), and a producer in another language
// may.
func PublishRawHeader(tb testing.TB, url, subject string, header, body []byte) uint64 {
	tb.Helper()
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(url, "nats://"), 5*time.Second)
	if err != nil {
		tb.Fatalf("natstest: dial: %v", err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(conn)
	if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "INFO ") {
		tb.Fatalf("natstest: no INFO from the server: %q %v", line, err)
	}
	const inbox = "_INBOX.natstest-raw"
	fmt.Fprintf(conn, "CONNECT {\"verbose\":false,\"pedantic\":false,\"headers\":true,\"protocol\":1}\r\nSUB %s 1\r\n", inbox)
	fmt.Fprintf(conn, "HPUB %s %s %d %d\r\n%s%s\r\nPING\r\n", subject, inbox, len(header), len(header)+len(body), header, body)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			tb.Fatalf("natstest: no acknowledgement: %v", err)
		}
		var sid, size int
		var subj string
		switch {
		case strings.HasPrefix(line, "-ERR"):
			tb.Fatalf("natstest: server refused the publish: %s", strings.TrimSpace(line))
		case strings.HasPrefix(line, "PING"):
			_, _ = io.WriteString(conn, "PONG\r\n")
		case strings.HasPrefix(line, "MSG "):
			if _, err := fmt.Sscanf(line, "MSG %s %d %d", &subj, &sid, &size); err != nil {
				tb.Fatalf("natstest: %q: %v", line, err)
			}
			payload := make([]byte, size+2) // and its CRLF
			if _, err := io.ReadFull(r, payload); err != nil {
				tb.Fatalf("natstest: acknowledgement: %v", err)
			}
			var ack struct {
				Seq   uint64          `json:"seq"`
				Error json.RawMessage `json:"error"`
			}
			if err := json.Unmarshal(payload[:size], &ack); err != nil || ack.Error != nil || ack.Seq == 0 {
				tb.Fatalf("natstest: publish not stored: %s", payload[:size])
			}
			return ack.Seq
		}
	}
}
