package emulator

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"
)

// responseStore holds the survey responses the sync serves. Generated ones
// are a pure function of their position (1, 2, ...), so seeding a hundred
// thousand costs nothing; only responses injected with AddRawResponses are
// kept.
type responseStore struct {
	mu    sync.RWMutex
	total int                     // positions 1..total exist
	raw   map[int]json.RawMessage // injected responses by position
}

// firstResponseNumber is the number_customergauge of position 0; position
// p has firstResponseNumber+p.
const firstResponseNumber = 1000

func (s *responseStore) init(n int) {
	s.total = max(n, 0)
	s.raw = make(map[int]json.RawMessage)
}

// The with[] expansions, in the order the vendor's example lists them.
const (
	withSelectedDrivers = "selected_drivers"
	withTags            = "tags"
	withQuestions       = "questions"
	withProperties      = "properties"
)

// expansions is a set of with[] expansions.
type expansions struct{ drivers, tags, questions, properties bool }

func parseExpansion(x *expansions, name string) bool {
	switch name {
	case withSelectedDrivers:
		x.drivers = true
	case withTags:
		x.tags = true
	case withQuestions:
		x.questions = true
	case withProperties:
		x.properties = true
	default:
		return false
	}
	return true
}

// surveyResponse is one response in the shape of the vendor's example.
type surveyResponse struct {
	Status              string       `json:"status"`
	Contact             responseName `json:"contact"`
	Account             responseAcct `json:"account"`
	NumberCustomergauge int64        `json:"number_customergauge"`
	NumberCustomer      string       `json:"number_customer"`
	NumberOrder         string       `json:"number_order"`
	Email               string       `json:"email"`
	Phone               string       `json:"phone"`
	NPS                 int          `json:"nps"`
	Comment             comment      `json:"comment"`
	DateCreation        string       `json:"date_creation"`
	DateOrder           string       `json:"date_order"`
	DateSent            string       `json:"date_sent"`
	DateSurveyResponse  string       `json:"date_survey_response"`
	Language            string       `json:"language"`
	Locale              string       `json:"locale"`
	FollowUp            followUp     `json:"follow_up"`
	Tags                *[]tag       `json:"tags,omitempty"`
	Questions           *[]question  `json:"questions,omitempty"`
	SelectedDrivers     *[]driver    `json:"selected_drivers,omitempty"`
	Properties          *[]property  `json:"properties,omitempty"`
}

// Period fields, the values of period[field].
const (
	periodCreation       = "date_creation"
	periodOrder          = "date_order"
	periodSent           = "date_sent"
	periodSurveyResponse = "date_survey_response"
)

func isPeriodField(name string) bool {
	switch name {
	case periodCreation, periodOrder, periodSent, periodSurveyResponse:
		return true
	}
	return false
}

// date is the value of the period field name.
func (r *surveyResponse) date(name string) string {
	switch name {
	case periodCreation:
		return r.DateCreation
	case periodOrder:
		return r.DateOrder
	case periodSent:
		return r.DateSent
	case periodSurveyResponse:
		return r.DateSurveyResponse
	}
	return ""
}

type responseName struct {
	FirstName string `json:"first_name"`
	LastName  string `json:"last_name"`
}

type responseAcct struct {
	Name   string `json:"name"`
	Number string `json:"number"`
}

type comment struct {
	Original    string `json:"original"`
	Translation string `json:"translation"`
}

type followUp struct {
	Requested bool   `json:"requested"`
	Details   string `json:"details"`
}

type tag struct {
	Label     string `json:"label"`
	Type      string `json:"type"`
	Sentiment string `json:"sentiment,omitempty"`
}

type question struct {
	Title  string `json:"title"`
	Answer string `json:"answer"`
}

type driver struct {
	Primary   string   `json:"primary"`
	Secondary []string `json:"secondary"`
}

type property struct {
	Field     string  `json:"field"`
	Reference *string `json:"reference"`
}

var (
	firstNames = []string{"John", "Jane", "Pieter", "Maria", "Li", "Amara", "Jürgen", "Sofia", "Kenji", "Olivia"}
	lastNames  = []string{"Doe", "Roe", "de Vries", "García", "Wang", "Okafor", "Müller", "Rossi", "Tanaka", "Smith"}
	accounts   = []string{"ACME", "Globex", "Initech", "Umbrella", "Stark Industries", "Wayne Enterprises", "Hooli", "Soylent"}
	languages  = []struct{ lang, locale string }{{"EN", "en_GB"}, {"EN", "en_US"}, {"NL", "nl_NL"}, {"DE", "de_DE"}, {"PT", "pt_BR"}}
	comments   = []comment{
		{"Great service, quick delivery.", "Great service, quick delivery."},
		{"Comentário de exemplo", "Example Comment"},
		{"Support took too long to answer.", "Support took too long to answer."},
		{"Sehr zufrieden mit dem Produkt.", "Very satisfied with the product."},
		{"", ""},
	}
	topics    = []string{"Product", "Support", "Pricing", "Delivery", "Invoicing"}
	feelings  = []string{"positive", "negative", "mixed", "neutral"}
	questions = []string{"We made it easy to solve your support issue.", "How satisfied are you with the product?", "Rate our delivery."}
	drivers   = []driver{
		{"Ordering", []string{"Ease of Ordering", "Product Information", "Invoicing/Payments"}},
		{"Product", []string{"Ease of Use", "Capabilities", "Return on Investment"}},
		{"Service", []string{"Responsiveness", "Knowledge"}},
	}
	countries = []string{"NL", "GB", "US", "DE", "BR", "AU"}
)

// responseEpoch is when the first generated response was created.
var responseEpoch = time.Date(2022, 3, 30, 8, 0, 0, 0, time.UTC)

func pick[T any](r *rand.Rand, s []T) T { return s[r.IntN(len(s))] }

// generate builds the response at position pos, the same every time.
func generate(pos int, x expansions) surveyResponse {
	r := rand.New(rand.NewPCG(0x6367776f726b6572, uint64(pos)))
	created := responseEpoch.Add(time.Duration(pos) * 37 * time.Minute)
	order := created.Add(-time.Duration(1+r.IntN(72)) * time.Hour)
	sent := created.Add(time.Hour)
	answered := sent.Add(time.Duration(1+r.IntN(600)) * time.Minute)
	lang := pick(r, languages)
	first, last := pick(r, firstNames), pick(r, lastNames)
	number := int64(firstResponseNumber + pos)
	resp := surveyResponse{
		Status:              "response",
		Contact:             responseName{first, last},
		Account:             responseAcct{pick(r, accounts), strconv.Itoa(100 + r.IntN(900))},
		NumberCustomergauge: number,
		NumberCustomer:      strconv.Itoa(1 + r.IntN(99999)),
		NumberOrder:         strconv.Itoa(1 + r.IntN(999999)),
		Email:               fmt.Sprintf("respondent%d@example.com", number),
		Phone:               fmt.Sprintf("+3120%07d", r.IntN(10_000_000)),
		NPS:                 r.IntN(11),
		Comment:             pick(r, comments),
		DateCreation:        created.Format(time.DateTime),
		DateOrder:           order.Format(time.DateTime),
		DateSent:            sent.Format(time.DateTime),
		DateSurveyResponse:  answered.Format(time.DateTime),
		Language:            lang.lang,
		Locale:              lang.locale,
		FollowUp:            followUp{Requested: r.IntN(4) == 0, Details: ""},
	}
	if resp.FollowUp.Requested {
		resp.FollowUp.Details = resp.Phone
	}
	// Expansions draw from their own stream, so asking for one does not
	// change another.
	if x.tags {
		r := rand.New(rand.NewPCG(1, uint64(pos)))
		tags := make([]tag, 0, 2)
		for i, n := 0, r.IntN(3); i < n; i++ {
			if r.IntN(2) == 0 {
				tags = append(tags, tag{Label: pick(r, topics), Type: "topic", Sentiment: pick(r, feelings)})
			} else {
				tags = append(tags, tag{Label: pick(r, topics), Type: "tag"})
			}
		}
		resp.Tags = &tags
	}
	if x.questions {
		r := rand.New(rand.NewPCG(2, uint64(pos)))
		qs := make([]question, 0, 2)
		for i, n := 0, r.IntN(3); i < n; i++ {
			qs = append(qs, question{Title: questions[i], Answer: strconv.Itoa(1 + r.IntN(10))})
		}
		resp.Questions = &qs
	}
	if x.drivers {
		r := rand.New(rand.NewPCG(3, uint64(pos)))
		ds := make([]driver, 0, 2)
		for i, n := 0, r.IntN(3); i < n; i++ {
			ds = append(ds, drivers[(pos+i)%len(drivers)])
		}
		resp.SelectedDrivers = &ds
	}
	if x.properties {
		r := rand.New(rand.NewPCG(4, uint64(pos)))
		country, division := pick(r, countries), "Global"
		ps := []property{
			{"Country", &country},
			{"Division", &division},
			{"Touchpoint", nil},
			{"Key Contact", nil},
		}
		if r.IntN(2) == 0 {
			tp := "Relationship"
			ps[2].Reference = &tp
		}
		resp.Properties = &ps
	}
	return resp
}

// AddResponses adds n generated responses after the existing ones; a sync
// resuming from a stored cursor picks them up.
func (e *Emulator) AddResponses(n int) {
	if n <= 0 {
		return
	}
	e.responses.mu.Lock()
	e.responses.total += n
	e.responses.mu.Unlock()
}

// AddRawResponses adds responses exactly as given (each a JSON object)
// after the existing ones, e.g. one without number_customergauge. with[]
// does not change them.
func (e *Emulator) AddRawResponses(objects ...json.RawMessage) {
	s := &e.responses
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range objects {
		s.total++
		s.raw[s.total] = append(json.RawMessage(nil), o...)
	}
}

// ResponseCount is how many responses the sync can serve.
func (e *Emulator) ResponseCount() int {
	e.responses.mu.RLock()
	defer e.responses.mu.RUnlock()
	return e.responses.total
}

// Responses returns every response in sync order, encoded exactly as the
// sync serves them with the given with[] expansions.
func (e *Emulator) Responses(with ...string) []json.RawMessage {
	q := syncQuery{}
	for _, w := range with {
		parseExpansion(&q.with, w)
	}
	s := &e.responses
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]json.RawMessage, 0, s.total)
	for pos := 1; pos <= s.total; pos++ {
		b, _ := s.render(pos, &q)
		out = append(out, b)
	}
	return out
}

// render encodes the response at pos with q's expansions, or reports that
// it does not pass q's filters; the caller holds s.mu. A generated response
// is built once, filtered on its own dates and marshalled.
func (s *responseStore) render(pos int, q *syncQuery) (json.RawMessage, bool) {
	if raw, ok := s.raw[pos]; ok {
		return raw, !q.filters() || rawMatches(raw, q)
	}
	if q.number != nil && *q.number != int64(firstResponseNumber+pos) {
		return nil, false // no need to build it
	}
	resp := generate(pos, q.with)
	if q.periodField != "" && !q.inPeriod(resp.date(q.periodField)) {
		return nil, false
	}
	b, _ := json.Marshal(resp)
	return b, true
}

// filters reports whether q filters responses at all.
func (q *syncQuery) filters() bool { return q.number != nil || q.periodField != "" }

// rawMatches reports whether an injected response passes q's filters.
func rawMatches(raw json.RawMessage, q *syncQuery) bool {
	var fields map[string]json.RawMessage
	_ = json.Unmarshal(raw, &fields)
	if q.number != nil {
		n, _ := strconv.ParseInt(string(fields["number_customergauge"]), 10, 64)
		if n != *q.number {
			return false
		}
	}
	return q.periodField == "" || q.inPeriod(rawString(fields[q.periodField]))
}

// inPeriod reports whether date ("YYYY-MM-DD ...") falls within q's period.
func (q *syncQuery) inPeriod(date string) bool {
	if len(date) < len(time.DateOnly) {
		return false
	}
	day := date[:len(time.DateOnly)]
	return (q.periodStart == "" || day >= q.periodStart) && (q.periodEnd == "" || day <= q.periodEnd)
}
