package schemas

import "testing"

// typicalActivity is the size and shape of what producers send: the API
// page's example fields plus a handful of additional information.
var typicalActivity = []byte(`{
  "reference": "ab12cd34ef56",
  "account": "ACME Industries",
  "contact": "john.doe@example.com",
  "type": "Support Tickets",
  "source": "Freshdesk",
  "happened_at": "2019-03-06 10:00:00 +0530",
  "additional_information_object": {
    "subject": "Printer on fire",
    "agent_name": "Jane Roe",
    "url": "https://example.freshdesk.com/a/tickets/1234",
    "priority": "High",
    "status": "Open"
  }
}`)

// BenchmarkValidateActivity measures what the worker does per activity:
// validate, normalise happened_at, rewrite the body.
func BenchmarkValidateActivity(b *testing.B) {
	v, err := New("")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(typicalActivity)))
	for b.Loop() {
		f, err := v.ValidateActivity(typicalActivity)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := RewriteActivity(typicalActivity, f.Reference, f.HappenedAt); err != nil {
			b.Fatal(err)
		}
	}
}
