// Package config reads and validates what the exporter polls: one app from
// flags and environment, or many from a YAML file. Every error names the
// flag or the key at fault, and never contains an API key.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v4"

	"github.com/cometchat-exporter/cometchat-exporter/billing"
	"github.com/cometchat-exporter/cometchat-exporter/cometchat"
)

// App is one CometChat app to poll, fully resolved.
type App struct {
	Name         string
	AppID        string
	Region       string
	BaseURL      string // explicit, or derived from AppID and Region
	APIKeyFile   string
	APIKey       string // the secret itself; never printed
	OnBehalfOf   string
	PollInterval time.Duration
	Backfill     time.Duration
	// CAFile holds PEM certificates trusted besides the system's.
	CAFile string
	// Billing is the app's billing period and plan; zero for none.
	Billing billing.Plan
}

// String describes an app without its key.
func (a App) String() string {
	return fmt.Sprintf("app %q (base %s, interval %s, backfill %s)", a.Name, a.BaseURL, a.PollInterval, a.Backfill)
}

// Flags are the single-app settings from flags and environment.
type Flags struct {
	AppID, Region, BaseURL, APIKeyFile, OnBehalfOf, CAFile string
	// Billing are the --billing.* flags.
	Billing billing.Settings
	// APIKeyEnv is the value of COMETCHAT_API_KEY.
	APIKeyEnv     string
	PollInterval  time.Duration
	Backfill      time.Duration
	AllowInsecure bool
}

// FromFlags resolves the single app given by flags. The app label is the
// app id.
func FromFlags(f Flags) (App, error) {
	if f.AppID == "" {
		return App{}, errors.New("--cometchat.app-id (or COMETCHAT_APP_ID) is required")
	}
	if !appIDPattern.MatchString(f.AppID) {
		return App{}, fmt.Errorf("--cometchat.app-id: %q is not a valid app id (letters, digits, '-' and '_' only)", f.AppID)
	}
	a := App{Name: f.AppID, AppID: f.AppID, Region: f.Region, OnBehalfOf: f.OnBehalfOf,
		APIKeyFile: f.APIKeyFile, PollInterval: f.PollInterval, Backfill: f.Backfill, CAFile: f.CAFile}
	if f.CAFile != "" {
		if _, err := cometchat.LoadCAFile(f.CAFile); err != nil {
			return App{}, fmt.Errorf("--cometchat.ca-file: %w", err)
		}
	}
	plan, err := billing.Parse(f.Billing)
	if err != nil {
		// The keys of the file, named as the flags that set them.
		key, rest, _ := strings.Cut(err.Error(), ":")
		if flag, ok := billingFlags[key]; ok {
			return App{}, errors.New(flag + ":" + rest)
		}
		return App{}, err
	}
	a.Billing = plan
	if f.PollInterval <= 0 {
		return App{}, fmt.Errorf("--cometchat.poll-interval must be positive, got %s", f.PollInterval)
	}
	if f.Backfill < 0 {
		return App{}, fmt.Errorf("--cometchat.backfill must not be negative, got %s", f.Backfill)
	}

	if a.BaseURL, err = baseURL(f.AppID, f.Region, f.BaseURL, f.AllowInsecure); err != nil {
		name := "--cometchat.region"
		if f.BaseURL != "" {
			name = "--cometchat.base-url"
		}
		return App{}, fmt.Errorf("%s: %w", name, err)
	}
	switch {
	case f.APIKeyFile != "":
		if a.APIKey, err = ReadKeyFile(f.APIKeyFile); err != nil {
			return App{}, fmt.Errorf("--cometchat.api-key-file: %w", err)
		}
	case strings.TrimSpace(f.APIKeyEnv) != "":
		a.APIKey = strings.TrimSpace(f.APIKeyEnv)
	default:
		return App{}, errors.New("no API key: set COMETCHAT_API_KEY or --cometchat.api-key-file (COMETCHAT_API_KEY_FILE)")
	}
	return a, nil
}

var appIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]*$`)

func baseURL(appID, region, explicit string, allowInsecure bool) (string, error) {
	if explicit != "" {
		if err := cometchat.CheckBaseURL(explicit, allowInsecure); err != nil {
			return "", err
		}
		return strings.TrimRight(explicit, "/"), nil
	}
	if region == "" {
		return "", errors.New("a region (us, eu or in) is required when no base URL is given")
	}
	return cometchat.BaseURL(appID, region)
}

// ReadKeyFile reads an API key from a file, trimming surrounding space.
func ReadKeyFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading key file: %w", err)
	}
	key := strings.TrimSpace(string(b))
	if key == "" {
		return "", fmt.Errorf("key file %s is empty", path)
	}
	return key, nil
}

// File is the YAML configuration file.
type File struct {
	Apps []FileApp `yaml:"apps"`
}

// FileApp is one entry of apps in the file.
type FileApp struct {
	Name         string `yaml:"name"`
	AppID        string `yaml:"app_id"`
	Region       string `yaml:"region"`
	APIKeyFile   string `yaml:"api_key_file"`
	BaseURL      string `yaml:"base_url"`
	OnBehalfOf   string `yaml:"on_behalf_of"`
	PollInterval string `yaml:"poll_interval"` // e.g. 30s, 1m
	Backfill     string `yaml:"backfill"`      // e.g. 72h, 3d
	CAFile       string `yaml:"ca_file"`       // PEM certificates trusted besides the system's
	// The billing period and plan (see package billing).
	BillingDay           string `yaml:"billing_day"`
	BillingTimeZone      string `yaml:"billing_time_zone"`
	BillingMinutes       string `yaml:"billing_minutes"`
	IncludedAudioMinutes string `yaml:"included_audio_minutes"`
	IncludedVideoMinutes string `yaml:"included_video_minutes"`
	IncludedMinutes      string `yaml:"included_minutes"`
}

// duration parses a Prometheus-style duration ("30s", "1d"); empty is zero.
func duration(key, v string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	d, err := model.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", key, err)
	}
	return time.Duration(d), nil
}

// Defaults fill what a file entry leaves out.
type Defaults struct {
	PollInterval  time.Duration
	AllowInsecure bool
}

var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// LoadFile reads and validates a configuration file. Unknown keys are
// errors. Key files are read now, so that a bad one fails the load.
func LoadFile(path string, d Defaults) ([]App, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--config.file: %w", err)
	}
	apps, err := Parse(b, d)
	if err != nil {
		return nil, fmt.Errorf("--config.file %s: %w", path, err)
	}
	return apps, nil
}

// Parse validates configuration file contents.
func Parse(b []byte, d Defaults) ([]App, error) {
	var root yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(b)).Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("no apps configured")
		}
		return nil, err
	}
	if err := checkKeys(&root); err != nil {
		return nil, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var f File
	if err := dec.Decode(&f); err != nil {
		return nil, err
	}
	if len(f.Apps) == 0 {
		return nil, errors.New("no apps configured")
	}
	seen := map[string]bool{}
	var apps []App
	for i, fa := range f.Apps {
		where := fmt.Sprintf("apps[%d]", i)
		if fa.Name != "" {
			where = fmt.Sprintf("app %q", fa.Name)
		}
		lines := keyLines(&root, i)
		a, err := resolve(fa, d)
		if err != nil {
			// resolve names the key first ("region: ..."): say its line.
			line := lines[""]
			if key, _, ok := strings.Cut(err.Error(), ":"); ok && lines[key] > 0 {
				line = lines[key]
			}
			return nil, fmt.Errorf("%s (line %d): %w", where, line, err)
		}
		if seen[a.Name] {
			return nil, fmt.Errorf("%s (line %d): name is used twice", where, lines[""])
		}
		seen[a.Name] = true
		apps = append(apps, a)
	}
	if err := checkDistinct(apps); err != nil {
		return nil, err
	}
	return apps, nil
}

// stateSuffixes are what the state store appends to an app's state file
// (FILE.NAME): its journal, temporary files, files moved aside.
var stateSuffixes = []string{".journal", ".tmp-", ".corrupt-", ".other-identity-"}

// checkDistinct rejects two apps whose state files could be one file (a
// name that is another's plus a suffix the store uses, or the same name in
// another letter case, one file on a case-insensitive disk), and two apps
// that read the same data (app id, base URL and onBehalfOf), which would
// count every call twice.
func checkDistinct(apps []App) error {
	for i, a := range apps {
		for _, b := range apps[i+1:] {
			an, bn := strings.ToLower(a.Name), strings.ToLower(b.Name)
			if an == bn {
				return fmt.Errorf("apps %q and %q: names that differ only in letter case share a state file on a case-insensitive disk; rename one", a.Name, b.Name)
			}
			for _, pair := range [][2]App{{a, b}, {b, a}} {
				short, long := strings.ToLower(pair[0].Name), strings.ToLower(pair[1].Name)
				for _, suf := range stateSuffixes {
					if strings.HasPrefix(long, short+suf) {
						return fmt.Errorf("apps %q and %q: the state file of %q would collide with the %s file of %q; rename one",
							pair[0].Name, pair[1].Name, pair[1].Name, strings.Trim(suf, ".-"), pair[0].Name)
					}
				}
			}
			if a.AppID == b.AppID && a.BaseURL == b.BaseURL && a.OnBehalfOf == b.OnBehalfOf {
				return fmt.Errorf("apps %q and %q read the same app id %q (base URL %s, on_behalf_of %q): every call would be counted twice; keep one",
					a.Name, b.Name, a.AppID, a.BaseURL, a.OnBehalfOf)
			}
		}
	}
	return nil
}

// checkKeys reports the first unknown key, naming the app it is in, so
// that "app "a1": unknown key "polll_interval"" says where to look.
func checkKeys(root *yaml.Node) error {
	doc := root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		doc = doc.Content[0]
	}
	if doc.Kind != yaml.MappingNode {
		return nil // the typed decode says what is wrong
	}
	for i := 0; i+1 < len(doc.Content); i += 2 {
		k, v := doc.Content[i], doc.Content[i+1]
		if k.Value != "apps" {
			return fmt.Errorf("unknown key %q (line %d); the file has one key, apps", k.Value, k.Line)
		}
		if v.Kind != yaml.SequenceNode {
			continue
		}
		for n, app := range v.Content {
			if app.Kind != yaml.MappingNode {
				continue
			}
			where := fmt.Sprintf("apps[%d]", n)
			for j := 0; j+1 < len(app.Content); j += 2 {
				if app.Content[j].Value == "name" && app.Content[j+1].Value != "" {
					where = fmt.Sprintf("app %q", app.Content[j+1].Value)
				}
			}
			for j := 0; j+1 < len(app.Content); j += 2 {
				if key := app.Content[j]; !knownAppKeys[key.Value] {
					return fmt.Errorf("%s: unknown key %q (line %d)", where, key.Value, key.Line)
				}
			}
		}
	}
	return nil
}

// keyLines are the lines of the keys of apps entry i, and under "" the
// line where the entry starts.
func keyLines(root *yaml.Node, i int) map[string]int {
	lines := map[string]int{}
	doc := root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		doc = doc.Content[0]
	}
	for k := 0; doc.Kind == yaml.MappingNode && k+1 < len(doc.Content); k += 2 {
		if v := doc.Content[k+1]; doc.Content[k].Value == "apps" && v.Kind == yaml.SequenceNode && i < len(v.Content) {
			app := v.Content[i]
			lines[""] = app.Line
			for j := 0; app.Kind == yaml.MappingNode && j+1 < len(app.Content); j += 2 {
				lines[app.Content[j].Value] = app.Content[j].Line
			}
		}
	}
	return lines
}

// knownAppKeys are the keys of an apps entry: FileApp's yaml tags.
var knownAppKeys = func() map[string]bool {
	keys := map[string]bool{}
	t := reflect.TypeOf(FileApp{})
	for i := range t.NumField() {
		keys[strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0]] = true
	}
	return keys
}()

func resolve(fa FileApp, d Defaults) (App, error) {
	switch {
	case fa.Name == "":
		return App{}, errors.New("name is required")
	case !namePattern.MatchString(fa.Name):
		return App{}, fmt.Errorf("name %q may hold only letters, digits, '.', '-' and '_'", fa.Name)
	case fa.AppID == "":
		return App{}, errors.New("app_id is required")
	case !appIDPattern.MatchString(fa.AppID):
		return App{}, fmt.Errorf("app_id %q is not a valid app id", fa.AppID)
	case fa.APIKeyFile == "":
		return App{}, errors.New("api_key_file is required")
	}
	a := App{Name: fa.Name, AppID: fa.AppID, Region: fa.Region, APIKeyFile: fa.APIKeyFile, OnBehalfOf: fa.OnBehalfOf, CAFile: fa.CAFile}
	var err error
	if fa.CAFile != "" {
		if _, err := cometchat.LoadCAFile(fa.CAFile); err != nil {
			return App{}, fmt.Errorf("ca_file: %w", err)
		}
	}
	if a.Billing, err = billing.Parse(billing.Settings{Day: fa.BillingDay, Zone: fa.BillingTimeZone, Minutes: fa.BillingMinutes,
		IncludedAudio: fa.IncludedAudioMinutes, IncludedVideo: fa.IncludedVideoMinutes, IncludedTotal: fa.IncludedMinutes}); err != nil {
		return App{}, err
	}
	if a.PollInterval, err = duration("poll_interval", fa.PollInterval); err != nil {
		return App{}, err
	}
	if a.Backfill, err = duration("backfill", fa.Backfill); err != nil {
		return App{}, err
	}
	if a.PollInterval == 0 {
		a.PollInterval = d.PollInterval
	}
	if a.PollInterval <= 0 {
		return App{}, fmt.Errorf("poll_interval must be positive, got %s", a.PollInterval)
	}
	if a.BaseURL, err = baseURL(fa.AppID, fa.Region, fa.BaseURL, d.AllowInsecure); err != nil {
		if fa.BaseURL != "" {
			return App{}, fmt.Errorf("base_url: %w", err)
		}
		return App{}, fmt.Errorf("region: %w", err)
	}
	if a.APIKey, err = ReadKeyFile(fa.APIKeyFile); err != nil {
		return App{}, fmt.Errorf("api_key_file: %w", err)
	}
	return a, nil
}

// billingFlags name the --billing.* flags by the file's keys.
var billingFlags = map[string]string{"billing_day": "--billing.day", "billing_time_zone": "--billing.time-zone",
	"billing_minutes": "--billing.minutes", "included_audio_minutes": "--billing.included-audio-minutes",
	"included_video_minutes": "--billing.included-video-minutes", "included_minutes": "--billing.included-minutes"}

// ParseShard reads --config.shard, "INDEX/COUNT"; empty means 0/1 (all
// apps).
func ParseShard(spec string) (index, count int, err error) {
	if spec == "" {
		return 0, 1, nil
	}
	i, c, ok := strings.Cut(spec, "/")
	index, err1 := strconv.Atoi(i)
	count, err2 := strconv.Atoi(c)
	if !ok || err1 != nil || err2 != nil || count < 1 || index < 0 || index >= count {
		return 0, 0, fmt.Errorf("--config.shard: want INDEX/COUNT with 0 <= INDEX < COUNT, got %q", spec)
	}
	return index, count, nil
}

// ShardOf is the shard, out of count, that polls the app of that name: its
// name's FNV-1a hash modulo count. Every replica given the same file and
// count computes the same owner for each app.
func ShardOf(name string, count int) int {
	if count <= 1 {
		return 0
	}
	h := fnv.New32a()
	h.Write([]byte(name))
	return int(h.Sum32() % uint32(count))
}

// Shard keeps the apps of one replica out of count: those ShardOf gives to
// index. Every replica given the same file and count, and its own index,
// polls a disjoint share of the apps, and together they poll all.
func Shard(apps []App, index, count int) []App {
	if count <= 1 {
		return apps
	}
	var out []App
	for _, a := range apps {
		if ShardOf(a.Name, count) == index {
			out = append(out, a)
		}
	}
	return out
}
