package cgapi

import (
	"fmt"
	"net/url"
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

// checkURL validates an absolute http(s) URL, which for a base URL has no
// query or fragment, as a *SettingError naming setting.
func checkURL(setting, raw string, base bool) error {
	if raw == "" {
		return &SettingError{setting, "missing"}
	}
	u, err := url.Parse(raw)
	if err != nil {
		// Not echoed: an unparsable URL may still hold a password.
		return &SettingError{setting, "not a valid URL"}
	}
	if u.User != nil {
		// Never echo a URL that may carry a password.
		return &SettingError{setting, "credentials in the URL are not supported"}
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return &SettingError{setting, fmt.Sprintf("%q is not an absolute http or https URL", raw)}
	}
	if base && (u.RawQuery != "" || u.Fragment != "") {
		return &SettingError{setting, fmt.Sprintf("%q must be a base URL without query or fragment", raw)}
	}
	return nil
}
