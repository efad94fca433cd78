package cgapi

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"unicode/utf8"
)

// redacted replaces every credential found in server text.
const redacted = "[redacted]"

// redactor removes credentials from text a server sent, before the text
// becomes part of an error and so of a log line, /readyz or a dead letter's
// CG-Error. A token endpoint that echoes its form, or an API that echoes
// its request headers, would otherwise make the worker repeat the client
// secret or the access token. Every error built from server text passes
// through redactError, the one place that cleans it.
type redactor struct {
	// fixed replaces the client secret's fixed forms: raw, percent-encoded
	// (query or path form, upper- or lower-case hex), and base64 (standard
	// or URL alphabet, padded or not; alone, as the id:secret of HTTP
	// Basic, or anywhere inside a longer base64 text). nil without a
	// secret.
	fixed *strings.Replacer
	// escaped matches the secret with any of its characters escaped, as a
	// URL (%XX, "+") or JSON (\uXXXX, \") may have it, in any mix. Only text
	// holding one of escapeMarks can match, so other text is not scanned.
	// nil without a secret or with one too long for a pattern.
	escaped *regexp.Regexp
}

// escapeMarks start every escape that escaped matches.
const escapeMarks = `%\+`

// authorization is an Authorization (or Proxy-Authorization) value as a
// header dump, JSON, Go's %v of http.Header or a form shows it: everything
// up to the value's end is a credential, whatever its scheme.
var authorization = regexp.MustCompile(`(?i)(authorization"?[ \t]*[:=][ \t]*\[?[ \t]*"?)[^"\r\n,;&\]}]+`)

// schemeCredential is "Bearer xxx" or "Basic xxx" in free text.
var schemeCredential = regexp.MustCompile(`(?i)\b(bearer|basic)(\s+|%20|\+)([A-Za-z0-9._~+/-]+=*)`)

// schemeWords follow "Bearer" or "Basic" in prose ("invalid bearer
// token"); they are not credentials and stay readable.
var schemeWords = map[string]bool{
	"token": true, "tokens": true, "auth": true, "authentication": true,
	"authorization": true, "realm": true, "scheme": true, "credentials": true,
	"access": true, "is": true, "or": true, "and": true, "required": true,
}

func newRedactor(clientID, secret string) *redactor {
	if secret == "" {
		return &redactor{}
	}
	// Longer forms first: at one position, the first that matches wins,
	// so a whole base64 form beats its inner part.
	var forms []string
	for _, plain := range []string{
		clientID + ":" + secret,
		url.QueryEscape(clientID) + ":" + url.QueryEscape(secret),
		secret,
	} {
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
			full := enc.EncodeToString([]byte(plain))
			forms = append(forms, full, strings.TrimRight(full, "="))
		}
	}
	// A base64 echo of the whole token request holds the secret as the
	// form sent it.
	for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
		for _, plain := range []string{secret, url.QueryEscape(secret)} {
			forms = append(forms, base64Inner(enc, plain)...)
		}
	}
	q, p := url.QueryEscape(secret), url.PathEscape(secret)
	forms = append(forms, secret, q, lowerHex(q), p, lowerHex(p))
	pairs := make([]string, 0, 2*len(forms))
	for _, f := range forms {
		pairs = append(pairs, f, redacted)
	}
	r := &redactor{fixed: strings.NewReplacer(pairs...)}
	if len(secret) <= maxPatternSecret {
		r.escaped = regexp.MustCompile(escapedText(secret))
	}
	return r
}

// lowerHex writes the %XX escapes of s in lower case, as some encoders do.
func lowerHex(s string) string {
	b := []byte(s)
	for i := 0; i+2 < len(b); i++ {
		if b[i] == '%' {
			b[i+1], b[i+2] = lowerASCII(b[i+1]), lowerASCII(b[i+2])
			i += 2
		}
	}
	return string(b)
}

func lowerASCII(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// maxPatternSecret is the longest secret matched by a pattern, character
// by character (escapedText): the pattern grows about 60 bytes a
// character, and a secret of kilobytes (a key pasted by mistake) would
// take seconds to compile and to run. Longer ones are replaced in their
// fixed forms only.
const maxPatternSecret = 256

// base64Inner returns, for each of the three byte alignments secret can
// have inside a longer text, the base64 characters that depend on the
// secret's bytes alone. Those shorter than 8 characters are left out: too
// short to be found only where the secret is.
func base64Inner(enc *base64.Encoding, secret string) []string {
	var out []string
	for lead := range 3 {
		b := append(make([]byte, lead), secret...)
		s := enc.EncodeToString(b)
		// Characters are 6 bits: skip those holding lead bytes, and those
		// holding bits of what follows the secret.
		from := (lead*8 + 5) / 6
		to := len(b) * 8 / 6
		if to-from >= 8 {
			out = append(out, s[from:to])
		}
	}
	return out
}

// escapedText is a pattern for s with each character raw or escaped as a
// URL (%XX, either case, "+" for a space) or as JSON would escape it.
func escapedText(s string) string {
	var b strings.Builder
	for _, r := range s {
		var enc [utf8.UTFMax]byte
		n := utf8.EncodeRune(enc[:], r)
		b.WriteString("(?:")
		b.WriteString(regexp.QuoteMeta(string(r)))
		b.WriteString("|(?i:")
		for _, c := range enc[:n] {
			fmt.Fprintf(&b, "%%%02x", c)
		}
		b.WriteString(")")
		if r <= 0xFFFF {
			fmt.Fprintf(&b, `|(?i:\\u%04x)`, r)
		}
		switch r {
		case ' ':
			b.WriteString(`|\+`)
		case '"', '\\', '/':
			b.WriteString(`|\\` + regexp.QuoteMeta(string(r)))
		}
		b.WriteString(")")
	}
	return b.String()
}

// redact returns s without the client secret, Authorization values,
// Bearer or Basic credentials, and any of tokens (the access tokens in
// use).
func (r *redactor) redact(s string, tokens ...string) string {
	if r.fixed != nil {
		s = r.fixed.Replace(s)
	}
	if r.escaped != nil && strings.ContainsAny(s, escapeMarks) {
		s = r.escaped.ReplaceAllLiteralString(s, redacted)
	}
	s = authorization.ReplaceAllString(s, "${1}"+redacted)
	s = schemeCredential.ReplaceAllStringFunc(s, func(m string) string {
		sub := schemeCredential.FindStringSubmatch(m)
		if schemeWords[strings.ToLower(strings.TrimRight(sub[3], "="))] {
			return m
		}
		return sub[1] + sub[2] + redacted
	})
	// Last, for a token echoed on its own (in JSON, say).
	for _, t := range tokens {
		if t != "" {
			s = strings.ReplaceAll(s, t, redacted)
		}
	}
	return s
}

// redactError returns err with every text a server may have put in it
// redacted. The types of this package keep their type and fields, so
// callers still branch on them; a cause kept for errors.Is (timeouts,
// connection errors) stays in the chain behind a cleaned message.
func (r *redactor) redactError(err error, tokens ...string) error {
	clean := func(s string) string { return r.redact(s, tokens...) }
	var de *DataError
	var ae *AuthError
	var te *TransientError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &de):
		out := &DataError{Status: de.Status, Message: clean(de.Message)}
		if de.Errors != nil {
			out.Errors = make(map[string][]string, len(de.Errors))
			for k, msgs := range de.Errors {
				cm := make([]string, len(msgs))
				for i, m := range msgs {
					cm[i] = clean(m)
				}
				ck := clean(k)
				out.Errors[ck] = append(out.Errors[ck], cm...)
			}
		}
		return out
	case errors.As(err, &ae):
		return &AuthError{Status: ae.Status, Err: r.cleanCause(ae.Err, clean)}
	case errors.As(err, &te):
		return &TransientError{Status: te.Status, Err: r.cleanCause(te.Err, clean)}
	}
	return err
}

// cleanCause is err with a cleaned message. A cause with a chain of its
// own (a transport error) is kept behind it for errors.Is; a leaf, the
// server's text itself, is not, so no copy of the credential stays
// reachable by unwrapping.
func (r *redactor) cleanCause(err error, clean func(string) string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	c := clean(msg)
	switch {
	case c == msg:
		return err
	case errors.Unwrap(err) == nil:
		return errors.New(c)
	}
	return &scrubbedError{msg: c, cause: err}
}
