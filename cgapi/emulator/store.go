package emulator

import (
	"cmp"
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// activityStore keeps activities by reference, with the ids the API would
// assign to their accounts, classifications and contacts.
type activityStore struct {
	mu       sync.Mutex
	byKey    map[string]*Activity // reference, or a generated key when none was given
	nextID   int64
	nextAuto int64
	accounts map[string]int64
	classes  map[string]int64
	contacts map[string]int64 // folded contact -> id
}

func (s *activityStore) init() {
	s.byKey = make(map[string]*Activity)
	s.accounts = make(map[string]int64)
	s.classes = make(map[string]int64)
	s.contacts = make(map[string]int64)
}

// idFor returns the id of name in m, assigning the next one on first use.
func idFor(m map[string]int64, name string) int64 {
	id, ok := m[name]
	if !ok {
		id = int64(len(m) + 1)
		m[name] = id
	}
	return id
}

// activityResult is what the API answers for a stored activity.
type activityResult struct {
	id, classID, accountID, contactID int64 // contactID 0: null
	reference                         string
}

// put creates or updates the activity of a.Reference; an activity without
// reference is always new. a.Body and the parsed fields replace the old ones.
func (s *activityStore) put(a Activity) activityResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := a.Reference
	if key == "" {
		s.nextAuto++
		// NUL cannot appear in a JSON-decoded reference of interest to
		// tests, and ActivityByReference("") finds nothing.
		key = "\x00auto-" + strconv.FormatInt(s.nextAuto, 10)
	}
	old, ok := s.byKey[key]
	if ok {
		a.ID, a.Puts = old.ID, old.Puts+1
	} else {
		s.nextID++
		a.ID, a.Puts = s.nextID, 1
	}
	s.byKey[key] = &a
	res := activityResult{
		id:        a.ID,
		reference: a.Reference,
		classID:   idFor(s.classes, a.Type),
		accountID: idFor(s.accounts, a.Account),
	}
	if a.Contact != "" {
		res.contactID = idFor(s.contacts, foldContact(a.Contact))
	}
	return res
}

// Activities returns every stored activity, in the order they were created.
// Bodies are shared: do not modify them.
func (e *Emulator) Activities() []Activity {
	s := &e.acts
	s.mu.Lock()
	out := make([]Activity, 0, len(s.byKey))
	for _, a := range s.byKey {
		out = append(out, *a)
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b Activity) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// ActivityByReference returns the activity stored under reference.
func (e *Emulator) ActivityByReference(reference string) (Activity, bool) {
	s := &e.acts
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.byKey[reference]
	if !ok || reference == "" {
		return Activity{}, false
	}
	return *a, true
}

// ActivityCount is how many distinct activities are stored.
func (e *Emulator) ActivityCount() int {
	e.acts.mu.Lock()
	defer e.acts.mu.Unlock()
	return len(e.acts.byKey)
}

// contactBook is the set of contacts activities may name. Contacts created
// through a contact configuration join it, as they do in the real platform.
type contactBook struct {
	mu    sync.RWMutex
	known map[string]struct{} // folded
}

// foldContact: emails compare case-insensitively, as the platform's
// database collation does.
func foldContact(c string) string { return strings.ToLower(strings.TrimSpace(c)) }

func (b *contactBook) init(contacts []string) {
	b.known = make(map[string]struct{}, len(contacts))
	b.add(contacts...)
}

func (b *contactBook) add(contacts ...string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range contacts {
		if c = foldContact(c); c != "" {
			b.known[c] = struct{}{}
		}
	}
}

func (b *contactBook) has(c string) bool {
	b.mu.RLock()
	defer b.mu.RUnlock()
	_, ok := b.known[foldContact(c)]
	return ok
}

// AddContacts makes contacts known, so activities may name them from now on
// (a test can let an activity wait for its contact, then add it).
func (e *Emulator) AddContacts(contacts ...string) { e.contacts.add(contacts...) }

// configKind is the data type of a configuration (Inbound Mapping).
type configKind int

const (
	configContact configKind = iota
	configAccount
)

// record is one stored record: its fields merged over every PUT.
type record struct {
	fields map[string]any
	puts   int
}

type recordStore struct {
	mu      sync.RWMutex
	kinds   map[string]configKind
	records map[string]map[string]*record // configuration -> key -> record
	order   map[string][]string           // configuration -> keys in creation order
}

func (s *recordStore) init(configurations []string) {
	s.kinds = make(map[string]configKind)
	s.records = make(map[string]map[string]*record)
	s.order = make(map[string][]string)
	s.addConfigurations(configurations...)
}

// addConfigurations registers references. "ref=account" or "ref=contact"
// names the data type; otherwise a reference containing "account" is an
// account configuration and any other a contact one.
func (s *recordStore) addConfigurations(refs ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ref := range refs {
		ref = strings.TrimSpace(ref)
		kind := configContact
		if name, typ, ok := strings.Cut(ref, "="); ok {
			ref = name
			if strings.EqualFold(typ, "account") {
				kind = configAccount
			}
		} else if strings.Contains(strings.ToLower(ref), "account") {
			kind = configAccount
		}
		if ref != "" {
			s.kinds[ref] = kind
		}
	}
}

func (s *recordStore) kind(ref string) (configKind, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	k, ok := s.kinds[ref]
	return k, ok
}

// put merges fields into the record of (configuration, key), as the
// platform updates the mapped fields of an existing record.
func (s *recordStore) put(configuration, key string, fields map[string]any, discard bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	byKey := s.records[configuration]
	if byKey == nil {
		byKey = make(map[string]*record)
		s.records[configuration] = byKey
	}
	rec := byKey[key]
	if rec == nil {
		rec = &record{fields: make(map[string]any)}
		byKey[key] = rec
		s.order[configuration] = append(s.order[configuration], key)
	}
	rec.puts++
	if !discard {
		maps.Copy(rec.fields, fields)
	}
}

// AddConfigurations makes configuration references known; see
// Options.Configurations for how their data type is chosen.
func (e *Emulator) AddConfigurations(refs ...string) { e.recs.addConfigurations(refs...) }

// Records returns the records stored under configuration, in the order
// they were created, each the merge of every PUT's fields. JSON numbers
// are json.Number.
func (e *Emulator) Records(configuration string) []map[string]any {
	s := &e.recs
	s.mu.RLock()
	defer s.mu.RUnlock()
	keys := s.order[configuration]
	out := make([]map[string]any, 0, len(keys))
	for _, k := range keys {
		out = append(out, maps.Clone(s.records[configuration][k].fields))
	}
	return out
}

// RecordCount is how many distinct records configuration holds.
func (e *Emulator) RecordCount(configuration string) int {
	e.recs.mu.RLock()
	defer e.recs.mu.RUnlock()
	return len(e.recs.records[configuration])
}

// RecordPuts is how many PUTs created or updated the record of
// configuration identified by key: its Account Name, or for a contact its
// Email (case-insensitive) or else its Phone.
func (e *Emulator) RecordPuts(configuration, key string) int {
	e.recs.mu.RLock()
	defer e.recs.mu.RUnlock()
	byKey := e.recs.records[configuration]
	if rec, ok := byKey[key]; ok {
		return rec.puts
	}
	if rec, ok := byKey[foldContact(key)]; ok {
		return rec.puts
	}
	return 0
}

// recordValue renders a scalar record value as the text the platform
// stores (json.Number and bool as written).
func recordValue(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case json.Number:
		return v.String(), true
	case bool:
		return strconv.FormatBool(v), true
	}
	return "", false
}
