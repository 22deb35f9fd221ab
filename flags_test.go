package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// flagConflicts: which source of apps ignores which flags.
func TestFlagConflicts(t *testing.T) {
	appID := []string{"--cometchat.app-id (or COMETCHAT_APP_ID)"}
	backfill := []string{"--cometchat.backfill"}
	shard := []string{"--config.shard"}
	for _, tc := range []struct {
		name                  string
		file, demo            bool
		single, app, fileOnly []string
		want                  string // "" when fine
	}{
		{"flags alone", false, false, appID, backfill, nil, ""},
		{"file alone", true, false, nil, nil, shard, ""},
		{"demo with backfill", false, true, nil, backfill, nil, ""},
		{"demo and file", true, true, nil, nil, nil, "--demo and --config.file both given"},
		{"demo and app id", false, true, appID, nil, nil, "--demo and --cometchat.app-id (or COMETCHAT_APP_ID) both given"},
		{"file and app id", true, false, appID, nil, nil, "--config.file and --cometchat.app-id (or COMETCHAT_APP_ID) both given"},
		{"file and backfill", true, false, nil, backfill, nil, "--config.file and --cometchat.backfill both given"},
		{"shard without file", false, false, nil, nil, shard, "--config.shard needs --config.file"},
		{"demo sharded", false, true, nil, nil, shard, "--config.shard needs --config.file"},
	} {
		err := flagConflicts(tc.file, tc.demo, tc.single, tc.app, tc.fileOnly)
		if tc.want == "" {
			assert.NoError(t, err, tc.name)
			continue
		}
		if assert.Error(t, err, tc.name) {
			assert.Contains(t, err.Error(), tc.want, tc.name)
		}
	}
}
