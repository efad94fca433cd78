package status

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
)

// ReadyURL is the /readyz URL of the replica in this container or host,
// from its CG_HTTP_ADDR: a wildcard or empty host means loopback.
func ReadyURL(httpAddr string) (string, error) {
	host, port, err := net.SplitHostPort(httpAddr)
	if err != nil || port == "" || port == "0" {
		return "", fmt.Errorf("CG_HTTP_ADDR %q: want host:port with a fixed port", httpAddr)
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/readyz", nil
}

// CheckReady asks url (a replica's /readyz) and returns nil on 200, else
// why the replica is not ready: its own answer, or the connection error.
func CheckReady(ctx context.Context, client *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: HTTP %d: %s", url, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return nil
}
