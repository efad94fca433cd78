package emulator

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"testing"
)

// syncPage is a decoded sync answer; Next is the raw cursor.next.
type syncPage struct {
	Data   []json.RawMessage `json:"data"`
	Cursor map[string]json.RawMessage
}

func (f *fixture) sync(q url.Values) syncPage {
	f.t.Helper()
	status, body := f.status(http.MethodGet, SyncPath+"?"+q.Encode(), "")
	if status != http.StatusOK {
		f.t.Fatalf("sync %s: HTTP %d %s", q.Encode(), status, body)
	}
	var p syncPage
	mustUnmarshal(f.t, body, &p)
	return p
}

func (p syncPage) next(t *testing.T) int {
	t.Helper()
	n, err := strconv.Atoi(string(p.Cursor["next"]))
	if err != nil {
		t.Fatalf("cursor.next = %s", p.Cursor["next"])
	}
	return n
}

func numberOf(t *testing.T, raw json.RawMessage) int64 {
	t.Helper()
	var v struct {
		N int64 `json:"number_customergauge"`
	}
	mustUnmarshal(t, raw, &v)
	return v.N
}

func TestSyncPagesToTheEnd(t *testing.T) {
	t.Parallel()
	f := setup(t, Options{Responses: 2500})
	var numbers []int64
	var sizes, nexts []int
	cursor := ""
	for range 10 {
		q := url.Values{"per_page": {"1000"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		p := f.sync(q)
		sizes = append(sizes, len(p.Data))
		nexts = append(nexts, p.next(t))
		for _, r := range p.Data {
			numbers = append(numbers, numberOf(t, r))
		}
		if len(p.Data) == 0 {
			break
		}
		cursor = strconv.Itoa(p.next(t))
	}
	if !slices.Equal(sizes, []int{1000, 1000, 500, 0}) || !slices.Equal(nexts, []int{1000, 2000, 2500, 2500}) {
		t.Fatalf("page sizes %v, cursors %v", sizes, nexts)
	}
	for i, n := range numbers {
		if n != int64(1001+i) {
			t.Fatalf("response %d has number %d, want %d (oldest first, none skipped)", i, n, 1001+i)
		}
	}

	// A stored cursor picks up responses added later, and only those.
	f.srv.AddResponses(10)
	p := f.sync(url.Values{"per_page": {"1000"}, "cursor": {cursor}})
	if len(p.Data) != 10 || numberOf(t, p.Data[0]) != 3501 || p.next(t) != 2510 {
		t.Fatalf("after AddResponses: %d responses from %d, next %d", len(p.Data), numberOf(t, p.Data[0]), p.next(t))
	}
	if f.srv.ResponseCount() != 2510 {
		t.Errorf("ResponseCount = %d", f.srv.ResponseCount())
	}
}

func TestSyncDefaultsAndFilters(t *testing.T) {
	t.Parallel()
	f := setup(t, Options{Responses: 100})
	if p := f.sync(nil); len(p.Data) != 25 || p.next(t) != 25 {
		t.Errorf("default page: %d responses, next %d; want 25, 25", len(p.Data), p.next(t))
	}
	if p := f.sync(url.Values{"number_customergauge": {"1042"}}); len(p.Data) != 1 || numberOf(t, p.Data[0]) != 1042 {
		t.Errorf("number_customergauge: %s", p.Data)
	}
	if p := f.sync(url.Values{"filter": {"147b3662-cd7e-490c-b865-9be3480ca2fd"}, "per_page": {"1000"}}); len(p.Data) != 100 {
		t.Errorf("filter: %d responses", len(p.Data))
	}

	// The period filter compares the chosen date's day.
	all := f.srv.Responses()
	var day string
	var want int
	for _, raw := range all {
		var v struct {
			Sent string `json:"date_sent"`
		}
		mustUnmarshal(t, raw, &v)
		if day == "" {
			day = v.Sent[:10]
		}
		if v.Sent[:10] == day {
			want++
		}
	}
	p := f.sync(url.Values{"per_page": {"1000"}, "period[field]": {"date_sent"}, "period[start]": {day}, "period[end]": {day}})
	if len(p.Data) != want || want == 0 {
		t.Errorf("period: %d responses, want %d", len(p.Data), want)
	}
}

func TestSyncWith(t *testing.T) {
	t.Parallel()
	f := setup(t, Options{Responses: 5})
	expansions := []string{"selected_drivers", "tags", "questions", "properties"}
	for _, with := range [][]string{nil, {"tags"}, {"questions", "properties"}, expansions} {
		p := f.sync(url.Values{"with[]": with})
		want := f.srv.Responses(with...)
		for i, raw := range p.Data {
			var obj map[string]json.RawMessage
			mustUnmarshal(t, raw, &obj)
			for _, x := range expansions {
				if _, has := obj[x]; has != slices.Contains(with, x) {
					t.Errorf("with %v: key %s present = %v", with, x, has)
				}
			}
			if !bytes.Equal(raw, want[i]) {
				t.Errorf("with %v: served %s, Responses gives %s", with, raw, want[i])
			}
		}
	}
	// The same seed gives the same responses in another emulator.
	other := newTestServer(t, Options{Responses: 5})
	if a, b := f.srv.Responses(expansions...), other.Responses(expansions...); !slices.EqualFunc(a, b, func(x, y json.RawMessage) bool { return bytes.Equal(x, y) }) {
		t.Error("responses are not deterministic")
	}
}

func TestSyncValidation(t *testing.T) {
	t.Parallel()
	f := setup(t, Options{Responses: 5})
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"per_page=0", []string{"per_page"}},
		{"per_page=1001", []string{"per_page"}},
		{"per_page=ten", []string{"per_page"}},
		{"cursor=abc", []string{"cursor"}},
		{"cursor=-1", []string{"cursor"}},
		{"with[]=tags&with[]=comments", []string{"with.1"}},
		{"number_customergauge=x", []string{"number_customergauge"}},
		{"period[field]=date_bogus", []string{"period.field"}},
		{"period[field]=date_sent&period[start]=2023-1-5", []string{"period.start"}},
		{"period[field]=date_sent&period[end]=2023-02-30", []string{"period.end"}},
		{"period[start]=2023-01-05", []string{"period.field"}},
	} {
		status, body := f.status(http.MethodGet, SyncPath+"?"+tc.query, "")
		if status != http.StatusUnprocessableEntity {
			t.Errorf("%s: HTTP %d %s", tc.query, status, body)
			continue
		}
		if got := keys(validationErrors(t, body)); !slices.Equal(got, tc.want) {
			t.Errorf("%s: errors on %v, want %v", tc.query, got, tc.want)
		}
	}
	for _, q := range []string{"per_page=1", "per_page=1000", "cursor=0", "cursor=99", "with[0]=tags&with[1]=questions"} {
		if status, body := f.status(http.MethodGet, SyncPath+"?"+q, ""); status != http.StatusOK {
			t.Errorf("%s: HTTP %d %s", q, status, body)
		}
	}
}

func TestSyncCursorModes(t *testing.T) {
	t.Parallel()
	f := setup(t, Options{Responses: 3})
	for mode, want := range map[CursorMode]string{
		CursorNumber:  "3",
		CursorString:  `"3"`,
		CursorNull:    "null",
		CursorMissing: "",
	} {
		f.srv.SetCursorMode(mode)
		p := f.sync(nil)
		next, has := p.Cursor["next"]
		if len(p.Data) != 3 || string(next) != want || has != (want != "") {
			t.Errorf("mode %d: cursor %v (present %v), want %q", mode, p.Cursor, has, want)
		}
	}
}

func TestSyncRawResponses(t *testing.T) {
	t.Parallel()
	f := setup(t, Options{Responses: 2})
	f.srv.AddRawResponses(json.RawMessage(`{"status":"response","nps":9}`))
	f.srv.AddResponses(1)
	p := f.sync(url.Values{"cursor": {"2"}, "with[]": {"tags"}})
	if len(p.Data) != 2 || string(p.Data[0]) != `{"status":"response","nps":9}` || numberOf(t, p.Data[1]) != 1004 {
		t.Fatalf("data = %s", p.Data)
	}
}

// Filters apply alike to generated responses served with expansions and
// to injected ones; a filtered page carries the responses exactly as
// Responses encodes them.
func TestSyncFiltersWithExpansionsAndRaw(t *testing.T) {
	t.Parallel()
	f := setup(t, Options{Responses: 60})
	f.srv.AddRawResponses(
		json.RawMessage(`{"number_customergauge":5001,"date_sent":"2030-01-02 10:00:00"}`),
		json.RawMessage(`{"number_customergauge":5002,"date_sent":"2030-01-03 10:00:00"}`),
		json.RawMessage(`{"number_customergauge":5003}`),
	)
	withTags := f.srv.Responses("tags")
	var want []string
	day := ""
	for _, raw := range withTags[:60] {
		var v struct {
			Sent string `json:"date_sent"`
		}
		mustUnmarshal(t, raw, &v)
		if day == "" {
			day = v.Sent[:10]
		}
		if v.Sent[:10] == day {
			want = append(want, string(raw))
		}
	}
	p := f.sync(url.Values{"per_page": {"1000"}, "with[]": {"tags"}, "period[field]": {"date_sent"}, "period[start]": {day}, "period[end]": {day}})
	if len(p.Data) != len(want) || len(want) == 0 {
		t.Fatalf("period with tags: %d responses, want %d", len(p.Data), len(want))
	}
	for i := range want {
		if string(p.Data[i]) != want[i] {
			t.Errorf("response %d: %s, want %s", i, p.Data[i], want[i])
		}
	}

	p = f.sync(url.Values{"per_page": {"1000"}, "period[field]": {"date_sent"}, "period[start]": {"2030-01-02"}, "period[end]": {"2030-01-02"}})
	if len(p.Data) != 1 || numberOf(t, p.Data[0]) != 5001 {
		t.Errorf("period over injected responses: %s", p.Data)
	}
	p = f.sync(url.Values{"number_customergauge": {"5003"}})
	if len(p.Data) != 1 || numberOf(t, p.Data[0]) != 5003 {
		t.Errorf("number over injected responses: %s", p.Data)
	}
	p = f.sync(url.Values{"number_customergauge": {"1042"}, "with[]": {"tags"}})
	if len(p.Data) != 1 || string(p.Data[0]) != string(withTags[41]) {
		t.Errorf("number with tags: %s, want %s", p.Data, withTags[41])
	}
}
