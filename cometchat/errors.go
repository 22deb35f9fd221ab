package cometchat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Error codes the Calls API returns that the exporter treats specially.
const (
	CodeEmptyAPIKey     = "AUTH_ERR_EMPTY_APIKEY"
	CodeAPIKeyNotFound  = "AUTH_ERR_APIKEY_NOT_FOUND"
	CodeNoAccess        = "AUTH_ERR_NO_ACCESS"
	CodeSessionNotFound = "ERR_CALL_SESSION_NOT_FOUND"
)

// APIError is an HTTP error answer from the API. Code is the CometChat error
// code from the JSON body, empty when the body was not a CometChat error
// (an HTML page from a gateway, an empty body).
type APIError struct {
	Endpoint   string
	StatusCode int
	Code       string
	Message    string
	// RetryAfter is the server's Retry-After, zero when absent.
	RetryAfter time.Duration
	// URL is the request's URL (the key travels in a header, never in
	// it); Hint what to check, empty when the answer says enough.
	URL, Hint string
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "cometchat %s: HTTP %d", e.Endpoint, e.StatusCode)
	if e.Code != "" {
		b.WriteString(" " + e.Code)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter)
	}
	if e.Hint != "" {
		fmt.Fprintf(&b, " from %s: %s", e.URL, e.Hint)
	}
	return b.String()
}

// Hints for answers that do not look like the Calls API's.
const (
	HintURL = "this URL does not answer as the Calls API: check --cometchat.region and --cometchat.base-url " +
		"(region and base_url in --config.file), and the app id"
	HintKey = "check the REST API key (COMETCHAT_API_KEY, --cometchat.api-key-file or api_key_file): " +
		"it must be the app's REST API key, with access to calls"
)

// Hint says what to check for an answer: an error without a CometChat
// code that is a 404 of the list or an HTML page means the URL is not the
// Calls API (a wrong region, a base URL missing /v3); 401, 403 or an
// AUTH_ERR_ code means the key. A Get Call 404 with a plain body is a
// call the API does not know, which says enough.
func Hint(endpoint string, status int, code string, body []byte) string {
	switch {
	case status == 401 || status == 403 || strings.HasPrefix(code, "AUTH_ERR_"):
		return HintKey
	case code == "" && status < 500 && looksHTML(body): // a 5xx page is a gateway's bad moment
		return HintURL
	case code == "" && status == 404 && endpoint == EndpointListCalls:
		return HintURL
	}
	return ""
}

// looksHTML reports whether body is an HTML page (a gateway's, a
// proxy's, a web site's).
func looksHTML(body []byte) bool {
	head := strings.ToLower(strings.TrimSpace(string(body[:min(len(body), 512)])))
	return strings.HasPrefix(head, "<!doctype html") || strings.HasPrefix(head, "<html") || strings.Contains(head, "<body")
}

// NotFound reports whether the API said the call does not exist.
func (e *APIError) NotFound() bool {
	return e.StatusCode == 404 || e.Code == CodeSessionNotFound
}

// TransportError is a request that got no usable HTTP answer: a timeout, a
// reset connection, a body cut off or too large.
type TransportError struct {
	Endpoint string
	Reason   string // timeout, connection, body_too_large
	Err      error
}

func (e *TransportError) Error() string {
	return fmt.Sprintf("cometchat %s: %s: %v", e.Endpoint, e.Reason, e.Err)
}

func (e *TransportError) Unwrap() error { return e.Err }

// DecodeError is a 2xx answer whose body is not the expected JSON.
type DecodeError struct {
	Endpoint string
	Err      error
	// URL and Hint as in APIError: set for an HTML page.
	URL, Hint string
}

func (e *DecodeError) Error() string {
	if e.Hint != "" {
		return fmt.Sprintf("cometchat %s: decoding response from %s: %v: %s", e.Endpoint, e.URL, e.Err, e.Hint)
	}
	return fmt.Sprintf("cometchat %s: decoding response: %v", e.Endpoint, e.Err)
}

func (e *DecodeError) Unwrap() error { return e.Err }

var codePattern = regexp.MustCompile(`^[A-Z][A-Z0-9_]{2,63}$`)

// ErrorReason classifies an error into a short, bounded label value: the
// CometChat error code of a 4xx answer when the API sent a well-formed one
// (AUTH_ERR_APIKEY_NOT_FOUND, ...), otherwise a class an operator can act
// on: unauthorized (401) and forbidden (403) without a code, redirect (a 3xx,
// which the client refuses to follow with the key), rate_limited, http_5xx,
// http_4xx, timeout, connection, truncated, body_too_large, decode, canceled,
// unknown.
func ErrorReason(err error) string {
	var apiErr *APIError
	var tErr *TransportError
	var dErr *DecodeError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &apiErr):
		// Server errors are one class whatever their body says: their codes
		// are the server's internals, and alerts want the class.
		switch {
		case apiErr.StatusCode == 429:
			return "rate_limited"
		case apiErr.StatusCode >= 500:
			return "http_5xx"
		case codePattern.MatchString(apiErr.Code):
			return apiErr.Code
		case apiErr.StatusCode == 401:
			return "unauthorized"
		case apiErr.StatusCode == 403:
			return "forbidden"
		case apiErr.StatusCode >= 300 && apiErr.StatusCode < 400:
			return "redirect"
		default:
			return "http_4xx"
		}
	case errors.As(err, &tErr):
		return tErr.Reason
	case errors.As(err, &dErr):
		return "decode"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	default:
		return "unknown"
	}
}

// errorBody is the API's error envelope: {"error": {"code", "message", ...}}.
// Some gateways put code and message at the top level; both are accepted.
type errorBody struct {
	Error *struct {
		Code       flexString `json:"code"`
		Message    flexString `json:"message"`
		DevMessage flexString `json:"devMessage"`
	} `json:"error"`
	Code    flexString `json:"code"`
	Message flexString `json:"message"`
}

// ParseErrorBody extracts the CometChat error code and message from an error
// response body. A body that is not JSON (HTML, empty, truncated) yields
// empty strings: the HTTP status alone then describes the error. Neither is
// cut: whoever shows them removes secrets first, then clips (see
// Client.errorText), so that no part of a secret survives a cut.
func ParseErrorBody(body []byte) (code, message string) {
	var eb errorBody
	if json.Unmarshal(body, &eb) != nil {
		return "", ""
	}
	if eb.Error != nil {
		code, message = string(eb.Error.Code), string(eb.Error.Message)
		if message == "" {
			message = string(eb.Error.DevMessage)
		}
	} else {
		code, message = string(eb.Code), string(eb.Message)
	}
	return strings.TrimSpace(code), strings.TrimSpace(message)
}

// maxErrorText bounds the code and message of an APIError.
const (
	maxErrorCode    = 64
	maxErrorMessage = 200
)

// clip cuts s to at most n bytes, never inside a UTF-8 sequence.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "..."
}
