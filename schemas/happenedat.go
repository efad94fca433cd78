package schemas

import (
	"errors"
	"time"
)

// errHappenedAt is the one error of the happened_at parser: the callers put
// the field name and the API's wording around it.
var errHappenedAt = errors.New("not a valid date")

// NormalizeHappenedAt parses any accepted happened_at form and returns
// "YYYY-MM-DD HH:MM:SS" in UTC, fractional seconds truncated.
//
// Accepted forms (README, "Events"):
//
//	YYYY-MM-DD                          midnight UTC
//	DD-MM-YYYY                          midnight UTC
//	YYYY-MM-DD HH:MM:SS[.frac][[ ]OFF]  OFF is Z, +HHMM or +HH:MM; none means UTC
//	YYYY-MM-DDTHH:MM:SS[.frac]OFF       RFC 3339: OFF is Z or +HH:MM
//
// Impossible calendar dates (2019-02-30) are invalid, and so is a time whose
// UTC year falls outside 1000-9999 (the API's DATETIME range), which also
// keeps the result four-digit.
func NormalizeHappenedAt(s string) (string, error) {
	t, err := parseHappenedAt(s)
	if err != nil {
		return "", err
	}
	// Most producers already send the API's form: return it as it is
	// rather than a copy, one allocation less per event. Parsed, a
	// "YYYY-MM-DD HH:MM:SS" of that length has no fraction and no offset,
	// so it is its own normal form: no formatting needed to tell.
	if len(s) == len(time.DateTime) && s[10] == ' ' {
		return s, nil
	}
	return FormatHappenedAt(t), nil
}

// FormatHappenedAt formats t as the API's "YYYY-MM-DD HH:MM:SS" in UTC.
func FormatHappenedAt(t time.Time) string { return t.UTC().Format(time.DateTime) }

// validHappenedAt is the cg-happened-at format: the same parser as
// NormalizeHappenedAt, so what validates always normalises.
func validHappenedAt(v any) error {
	s, ok := v.(string)
	if !ok {
		return nil // format only constrains strings; "type" catches the rest
	}
	_, err := parseHappenedAt(s)
	return err
}

// parseHappenedAt is the single happened_at parser. It is hand-written
// because time.Parse would need one layout per form and still accept things
// the README's "Events" rules reject (single-digit fields, leap seconds in some layouts).
func parseHappenedAt(s string) (time.Time, error) {
	var year, month, day, hour, minute, second, offset int
	switch {
	case len(s) == 10 && s[2] == '-' && s[5] == '-': // DD-MM-YYYY
		day, month, year = digits(s[0:2]), digits(s[3:5]), digits(s[6:10])
	case len(s) >= 10 && s[4] == '-' && s[7] == '-': // YYYY-MM-DD...
		year, month, day = digits(s[0:4]), digits(s[5:7]), digits(s[8:10])
		if len(s) > 10 {
			var ok bool
			hour, minute, second, offset, ok = parseClock(s[10], s[11:])
			if !ok {
				return time.Time{}, errHappenedAt
			}
		}
	default:
		return time.Time{}, errHappenedAt
	}
	if year < 0 || month < 1 || month > 12 || day < 1 || day > daysIn(month, year) ||
		hour < 0 || hour > 23 || minute < 0 || minute > 59 || second < 0 || second > 59 {
		return time.Time{}, errHappenedAt
	}
	t := time.Date(year, time.Month(month), day, hour, minute, second, 0, time.UTC).
		Add(-time.Duration(offset) * time.Second)
	if y := t.Year(); y < 1000 || y > 9999 {
		return time.Time{}, errHappenedAt
	}
	return t, nil
}

// parseClock parses what follows the date: sep is 'T' (RFC 3339, offset
// required, colon form only) or ' ' (offset optional, may follow a space,
// colon optional). offset is in seconds east of UTC.
func parseClock(sep byte, rest string) (hour, minute, second, offset int, ok bool) {
	rfc3339 := sep == 'T' || sep == 't'
	if !rfc3339 && sep != ' ' {
		return 0, 0, 0, 0, false
	}
	if len(rest) < 8 || rest[2] != ':' || rest[5] != ':' {
		return 0, 0, 0, 0, false
	}
	hour, minute, second = digits(rest[0:2]), digits(rest[3:5]), digits(rest[6:8])
	rest = rest[8:]
	if len(rest) > 0 && rest[0] == '.' { // fraction: at least one digit, truncated
		n := 1
		for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
			n++
		}
		if n == 1 {
			return 0, 0, 0, 0, false
		}
		rest = rest[n:]
	}
	if !rfc3339 && len(rest) > 1 && rest[0] == ' ' {
		rest = rest[1:]
		if rest[0] == ' ' {
			return 0, 0, 0, 0, false
		}
	}
	switch {
	case rest == "":
		return hour, minute, second, 0, !rfc3339
	case rest == "Z" || rest == "z":
		return hour, minute, second, 0, true
	case rest[0] != '+' && rest[0] != '-':
		return 0, 0, 0, 0, false
	}
	var oh, om int
	switch {
	case len(rest) == 6 && rest[3] == ':':
		oh, om = digits(rest[1:3]), digits(rest[4:6])
	case len(rest) == 5 && !rfc3339:
		oh, om = digits(rest[1:3]), digits(rest[3:5])
	default:
		return 0, 0, 0, 0, false
	}
	if oh < 0 || oh > 23 || om < 0 || om > 59 {
		return 0, 0, 0, 0, false
	}
	offset = oh*3600 + om*60
	if rest[0] == '-' {
		offset = -offset
	}
	return hour, minute, second, offset, true
}

// digits returns the decimal value of s, or -1 unless every byte is a digit.
func digits(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + int(c-'0')
	}
	return n
}

func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}
