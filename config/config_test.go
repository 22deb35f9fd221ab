package config

import (
	"github.com/cometchat-exporter/cometchat-exporter/billing"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var defaults = Defaults{PollInterval: 30 * time.Second}

func TestGoodFiles(t *testing.T) {
	cases := map[string][]App{
		"single.good.yml": {{Name: "prod-us", AppID: "abc123", Region: "us",
			BaseURL: "https://abc123.call-us.cometchat.io/v3", APIKeyFile: "testdata/key", APIKey: "k-alpha",
			PollInterval: 30 * time.Second}},
		"full.good.yml": {
			{Name: "prod-eu", AppID: "abc123", Region: "eu", BaseURL: "https://abc123.call-eu.cometchat.io/v3",
				APIKeyFile: "testdata/key", APIKey: "k-alpha", OnBehalfOf: "support-bot",
				PollInterval: 15 * time.Second, Backfill: 24 * time.Hour},
			{Name: "staging", AppID: "def456", BaseURL: "https://calls-proxy.internal.example/v3",
				APIKeyFile: "testdata/key", APIKey: "k-alpha", PollInterval: 30 * time.Second},
		},
		"billing.good.yml": {
			{Name: "prod", AppID: "a1", Region: "eu", BaseURL: "https://a1.call-eu.cometchat.io/v3", APIKeyFile: "testdata/key", APIKey: "k-alpha",
				PollInterval: 30 * time.Second, Billing: billing.Plan{Day: 15, Zone: "Europe/Berlin", Minutes: billing.MinutesParticipant, IncludedAudio: 100000, IncludedVideo: 25000.5}},
			{Name: "pooled", AppID: "a2", Region: "us", BaseURL: "https://a2.call-us.cometchat.io/v3", APIKeyFile: "testdata/key", APIKey: "k-alpha",
				PollInterval: 30 * time.Second, Billing: billing.Plan{Day: 1, Zone: "UTC", Minutes: billing.MinutesCall, IncludedTotal: 50000}},
		},
		"same-app-other-user.good.yml": {
			{Name: "prod", AppID: "a1", Region: "us", BaseURL: "https://a1.call-us.cometchat.io/v3",
				APIKeyFile: "testdata/key", APIKey: "k-alpha", OnBehalfOf: "alice", PollInterval: 30 * time.Second},
			{Name: "prod.eu", AppID: "a1", Region: "us", BaseURL: "https://a1.call-us.cometchat.io/v3",
				APIKeyFile: "testdata/key", APIKey: "k-alpha", OnBehalfOf: "bob", PollInterval: 30 * time.Second},
		},
	}
	files, _ := filepath.Glob("testdata/*.good.yml")
	require.Len(t, files, len(cases), "every good file has a case")
	for name, want := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := LoadFile(filepath.Join("testdata", name), defaults)
			require.NoError(t, err)
			assert.Equal(t, want, got)
		})
	}
}

func TestBadFiles(t *testing.T) {
	cases := map[string]string{
		"unknown-key.bad.yml":         `app "prod": unknown key "api_key" (line 6)`,
		"misspelt-key.bad.yml":        `app "a1": unknown key "polll_interval" (line 7)`,
		"unknown-top-key.bad.yml":     `unknown key "app" (line 1); the file has one key, apps`,
		"no-apps.bad.yml":             "no apps configured",
		"empty.bad.yml":               "no apps configured",
		"duplicate-name.bad.yml":      `app "prod" (line 3): name is used twice`,
		"bad-region.bad.yml":          `app "prod" (line 2): region: region "mars" is not one of us, eu, in`,
		"missing-key-file.bad.yml":    `app "prod" (line 2): api_key_file is required`,
		"unreadable-key-file.bad.yml": `app "prod" (line 2): api_key_file: reading key file: open testdata/no-such-key: no such file or directory`,
		"plain-http.bad.yml":          `app "prod" (line 2): base_url: base URL "http://calls.example.com/v3" uses plain http to a non-loopback host; the API key would travel in clear`,
		"bad-interval.bad.yml":        `app "prod" (line 2): poll_interval: not a valid duration string: "soon"`,
		"bad-name.bad.yml":            `app "prod us" (line 2): name "prod us" may hold only letters, digits, '.', '-' and '_'`,
		"bad-billing.bad.yml":         `app "prod" (line 7): billing_time_zone: want an IANA time zone such as Europe/Berlin or UTC, got "Europe/Atlantis"`,
		"block-style.bad.yml":         `app "eu" (line 8): region: region "europe" is not one of us, eu, in`,
		"indentation.bad.yml":         `yaml: line 4: did not find expected '-' indicator`,
		"missing-app-id.bad.yml":      `app "prod" (line 2): app_id is required`,
		"journal-name.bad.yml":        `apps "x" and "x.journal": the state file of "x.journal" would collide with the journal file of "x"; rename one`,
		"case-name.bad.yml":           `apps "Prod" and "prod": names that differ only in letter case share a state file on a case-insensitive disk; rename one`,
		"same-app.bad.yml":            `apps "prod" and "prod-again" read the same app id "a1" (base URL https://a1.call-us.cometchat.io/v3, on_behalf_of ""): every call would be counted twice; keep one`,
	}
	files, _ := filepath.Glob("testdata/*.bad.yml")
	require.Len(t, files, len(cases), "every bad file has a case")
	for name, want := range cases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join("testdata", name)
			_, err := LoadFile(path, defaults)
			require.Error(t, err)
			assert.Equal(t, "--config.file "+path+": "+want, err.Error())
		})
	}
}

func TestErrorsNeverContainTheKey(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "key")
	require.NoError(t, os.WriteFile(key, []byte("super-secret-value"), 0o600))
	_, err := Parse([]byte("apps:\n  - {name: p, app_id: a, region: xx, api_key_file: "+key+"}\n"), defaults)
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "super-secret-value")
	a, err := FromFlags(Flags{AppID: "a", Region: "us", APIKeyEnv: "super-secret-value", PollInterval: time.Second})
	require.NoError(t, err)
	assert.NotContains(t, a.String(), "super-secret-value")
}

func TestFromFlags(t *testing.T) {
	a, err := FromFlags(Flags{AppID: "a1", BaseURL: "http://127.0.0.1:9/v3/", APIKeyEnv: " k \n", PollInterval: time.Second})
	require.NoError(t, err)
	assert.Equal(t, "http://127.0.0.1:9/v3", a.BaseURL)
	assert.Equal(t, "k", a.APIKey)
	assert.Equal(t, "a1", a.Name, "the app id is the app label")

	_, err = FromFlags(Flags{AppID: "a1", Region: "us", APIKeyEnv: "k", PollInterval: time.Second, Backfill: -time.Hour})
	assert.EqualError(t, err, "--cometchat.backfill must not be negative, got -1h0m0s")
	_, err = FromFlags(Flags{AppID: "a1", BaseURL: "http://calls.example.com/v3", APIKeyEnv: "k", PollInterval: time.Second, AllowInsecure: true})
	assert.NoError(t, err, "--cometchat.allow-insecure-http allows plain http")
	_, err = FromFlags(Flags{AppID: "a1", Region: "us", APIKeyEnv: "k", PollInterval: time.Second, APIKeyFile: "testdata/key"})
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(a.String(), `app "a1"`))
}

func TestShard(t *testing.T) {
	var apps []App
	for i := range 50 {
		apps = append(apps, App{Name: "app-" + strconv.Itoa(i)})
	}
	seen := map[string]int{}
	for i := range 3 {
		for _, a := range Shard(apps, i, 3) {
			seen[a.Name]++
		}
		assert.NotEmpty(t, Shard(apps, i, 3), "every shard gets some of 50 apps")
	}
	assert.Len(t, seen, 50, "together the shards poll every app")
	for name, n := range seen {
		assert.Equal(t, 1, n, "%s is polled by exactly one shard", name)
	}
	assert.Equal(t, apps, Shard(apps, 0, 1))
	// The owner of an app is part of the deployment: replicas of two
	// versions must agree on it, and a changed hash would move apps (and
	// their state files) between shards. These are FNV-1a's values.
	for name, want := range map[string][2]int{"alpha": {1, 2}, "gamma": {0, 0}, "sales": {1, 0}, "support": {0, 2}} {
		assert.Equal(t, want, [2]int{ShardOf(name, 2), ShardOf(name, 3)}, name)
	}

	for spec, want := range map[string][2]int{"": {0, 1}, "0/1": {0, 1}, "2/3": {2, 3}} {
		i, c, err := ParseShard(spec)
		require.NoError(t, err)
		assert.Equal(t, want, [2]int{i, c})
	}
	for _, bad := range []string{"3/3", "-1/3", "1", "a/b", "0/0"} {
		_, _, err := ParseShard(bad)
		assert.EqualError(t, err, `--config.shard: want INDEX/COUNT with 0 <= INDEX < COUNT, got "`+bad+`"`)
	}
}

func TestBillingSettings(t *testing.T) {
	apps, err := LoadFile("testdata/billing.good.yml", defaults)
	require.NoError(t, err)
	require.Len(t, apps, 2)
	assert.Equal(t, billing.Plan{Day: 15, Zone: "Europe/Berlin", Minutes: billing.MinutesParticipant, IncludedAudio: 100000, IncludedVideo: 25000.5}, apps[0].Billing)
	assert.Equal(t, billing.Plan{Day: 1, Zone: "UTC", Minutes: billing.MinutesCall, IncludedTotal: 50000}, apps[1].Billing, "the defaults: day 1 in UTC, call-level minutes")
	_, err = FromFlags(Flags{AppID: "a1", Region: "us", APIKeyEnv: "k", PollInterval: time.Second, Billing: billing.Settings{Day: "31"}})
	require.Error(t, err)
	assert.Equal(t, `--billing.day: want a day of the month from 1 to 28 (a later day would not exist in every month), got "31"`, err.Error(), "named as the flag")
	a, err := FromFlags(Flags{AppID: "a1", Region: "us", APIKeyEnv: "k", PollInterval: time.Second})
	require.NoError(t, err)
	assert.False(t, a.Billing.Enabled(), "no --billing flag, no period")
}
