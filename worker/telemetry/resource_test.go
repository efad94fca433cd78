package telemetry

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// scrape returns the /metrics text of tel.
func scrape(t *testing.T, tel *Telemetry) string {
	t.Helper()
	srv := httptest.NewServer(tel.Metrics)
	t.Cleanup(srv.Close)
	return getBody(t, srv.URL)
}

// Our service name is a default: without OTEL_SERVICE_NAME it is the
// resource's, visible in target_info.
func TestServiceNameDefault(t *testing.T) {
	t.Parallel()
	tel, err := Setup(context.Background(), Options{ServiceVersion: "1.2.3", LookupEnv: env(nil)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	body := scrape(t, tel)
	for _, want := range []string{`service_name="cgworker"`, `service_version="1.2.3"`} {
		if !strings.Contains(body, want) {
			t.Errorf("target_info lacks %s:\n%s", want, grepLines(body, "target_info"))
		}
	}
}

// OTEL_SERVICE_NAME wins over our default, as the OpenTelemetry SDK's
// conventions say. The SDK reads the variable from the process environment,
// hence t.Setenv and no t.Parallel (no parallel test of this package runs
// while it does).
func TestServiceNameFromEnvironment(t *testing.T) {
	t.Setenv("OTEL_SERVICE_NAME", "billing-sync")
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=staging")
	tel, err := Setup(context.Background(), Options{LookupEnv: env(nil)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	info := grepLines(scrape(t, tel), "target_info")
	if !strings.Contains(info, `service_name="billing-sync"`) || strings.Contains(info, `service_name="cgworker"`) {
		t.Errorf("target_info does not carry OTEL_SERVICE_NAME:\n%s", info)
	}
	if !strings.Contains(info, `deployment_environment="staging"`) {
		t.Errorf("target_info lacks OTEL_RESOURCE_ATTRIBUTES:\n%s", info)
	}
}

// /metrics carries the Go runtime's and the process's collectors and the
// readiness gauge, which follows the readiness function at each scrape.
func TestProcessMetricsAndReadiness(t *testing.T) {
	t.Parallel()
	tel, err := Setup(context.Background(), Options{LookupEnv: env(nil)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	var notReady atomic.Bool
	if err := tel.ObserveReadiness(func() error {
		if notReady.Load() {
			return errors.New("draining")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	body := scrape(t, tel)
	for _, want := range []string{"\ngo_goroutines ", "\nprocess_cpu_seconds_total ", "\nprocess_resident_memory_bytes ", "\ncgworker_ready{"} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", strings.TrimSpace(want))
		}
	}
	if got := grepLines(body, "cgworker_ready{"); !strings.HasSuffix(got, "} 1") {
		t.Errorf("ready replica: %q, want 1", got)
	}
	notReady.Store(true)
	if got := grepLines(scrape(t, tel), "cgworker_ready{"); !strings.HasSuffix(got, "} 0") {
		t.Errorf("unready replica: %q, want 0", got)
	}
}

// grepLines is the lines of text that start with prefix.
func grepLines(text, prefix string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
