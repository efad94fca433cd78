package responses

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/cgworker/cgworker/schemas"
)

// numberKey is the response field that identifies a response and orders the
// sync's output.
const numberKey = "number_customergauge"

// errNoNumber marks a response object without a usable number_customergauge.
var errNoNumber = errors.New("no number_customergauge")

// responseNumber returns the number_customergauge of one response object,
// given as a JSON integer or a string holding one. It reads only the top
// level of the object instead of decoding it: a page of a thousand large
// responses would otherwise be decoded in full just to read one field.
// The API client has already checked that raw is valid JSON.
func responseNumber(raw []byte) (int64, error) {
	v, ok, err := schemas.TopLevelMember(raw, numberKey)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", errNoNumber, err)
	}
	if !ok {
		return 0, errNoNumber
	}
	return parseNumber(v)
}

var errMalformed = fmt.Errorf("%w: malformed JSON", errNoNumber)

// parseNumber reads the value of number_customergauge: a positive integer,
// as a JSON number (an integral float such as 3414.0 too) or a string.
func parseNumber(v []byte) (int64, error) {
	if len(v) == 0 || bytes.Equal(v, []byte("null")) {
		return 0, fmt.Errorf("%w: it is null", errNoNumber)
	}
	text := string(v)
	if v[0] == '"' {
		if err := json.Unmarshal(v, &text); err != nil {
			return 0, errMalformed
		}
	}
	n, err := strconv.ParseInt(text, 10, 64)
	if err != nil {
		f, ferr := strconv.ParseFloat(text, 64)
		if ferr != nil || f != math.Trunc(f) || f > 1<<53 || f < -(1<<53) {
			return 0, fmt.Errorf("%w: %.40s is not an integer", errNoNumber, v)
		}
		n = int64(f)
	}
	if n <= 0 {
		return 0, fmt.Errorf("%w: %d is not positive", errNoNumber, n)
	}
	return n, nil
}

// pageNumbers returns the number of every response of a page, or an error
// naming the first response without one: a page is published whole or not
// at all.
func pageNumbers(data []json.RawMessage) ([]int64, error) {
	nums := make([]int64, len(data))
	for i, raw := range data {
		n, err := responseNumber(raw)
		if err != nil {
			return nil, fmt.Errorf("response %d of the page: %w", i, err)
		}
		nums[i] = n
	}
	return nums, nil
}
