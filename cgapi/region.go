package cgapi

import (
	"fmt"
	"net/url"
	"strings"
)

// URLsForRegion gives the default auth, imports and API base URLs for
// region eu, us or au.
func URLsForRegion(region string) (auth, imports, api string, err error) {
	switch region {
	case "eu", "us", "au":
	default:
		return "", "", "", fmt.Errorf("CG_REGION: %q is not a known region (want eu, us or au)", region)
	}
	return "https://auth." + region + ".customergauge.com/oauth2/token",
		"https://imports.api." + region + ".customergauge.com",
		"https://api." + region + ".customergauge.com",
		nil
}

// checkURL validates an absolute http(s) URL, naming setting in the error.
// base URLs lose a trailing slash, as the client appends paths to them.
func checkURL(setting, raw string, base bool) (string, error) {
	if raw == "" {
		return "", fmt.Errorf("%s: missing", setting)
	}
	u, err := url.Parse(raw)
	if err != nil {
		// Not echoed: an unparsable URL may still hold a password.
		return "", fmt.Errorf("%s: not a valid URL", setting)
	}
	if u.User != nil {
		// Never echo a URL that may carry a password.
		return "", fmt.Errorf("%s: credentials in the URL are not supported", setting)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("%s: %q is not an absolute http or https URL", setting, raw)
	}
	if base && (u.RawQuery != "" || u.Fragment != "") {
		return "", fmt.Errorf("%s: %q must be a base URL without query or fragment", setting, raw)
	}
	if base {
		return strings.TrimRight(raw, "/"), nil
	}
	return raw, nil
}
