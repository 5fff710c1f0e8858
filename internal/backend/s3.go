package backend

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Environment variables of the S3 target, beside the AWS ones the
// credentials come from (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
// AWS_SESSION_TOKEN, and the profile AWS_PROFILE of the files
// AWS_SHARED_CREDENTIALS_FILE and AWS_CONFIG_FILE).
const (
	// EnvEndpoint overrides the endpoint, for self-hosted stores
	// (http://host:port or https://host:port). EnvEndpointS3 wins over it,
	// as in the AWS tools.
	EnvEndpoint   = "AWS_ENDPOINT_URL"
	EnvEndpointS3 = "AWS_ENDPOINT_URL_S3"
	// EnvRegion and EnvDefaultRegion name the region; without them, it is
	// the profile's region in the AWS config file.
	EnvRegion        = "AWS_REGION"
	EnvDefaultRegion = "AWS_DEFAULT_REGION"
	// EnvProfile names the profile of the AWS files (default "default");
	// EnvConfigFile is the AWS config file (default ~/.aws/config).
	EnvProfile    = "AWS_PROFILE"
	EnvConfigFile = "AWS_CONFIG_FILE"
	// EnvPathStyle, set to 1 or true, addresses buckets by path
	// (endpoint/bucket/key) instead of by host name.
	EnvPathStyle = "CLUSTERKEEP_S3_PATH_STYLE"
)

// DefaultPartSize is the part size of streamed uploads: one part is in
// memory at a time, and it allows objects of up to 10,000 parts (80 GiB).
const DefaultPartSize = 8 << 20

// S3Options are an S3 target's settings.
type S3Options struct {
	// Endpoint is the store's URL; empty, AWS's.
	Endpoint string
	// PathStyle forces path-style addressing; otherwise the client
	// chooses (virtual-host style on AWS, path style elsewhere).
	PathStyle bool
	Region    string
	// Creds, if set, replaces the usual chain (environment, shared
	// credentials file, instance role).
	Creds *credentials.Credentials
	// PartSize is the size of an upload's parts (DefaultPartSize).
	PartSize uint64
	// PartialAge is DefaultPartialAge unless set.
	PartialAge time.Duration
}

// S3FromEnv reads the S3 settings from the environment, and the region,
// when the environment names none, from the AWS config file.
func S3FromEnv() S3Options {
	o := S3Options{Endpoint: os.Getenv(EnvEndpointS3), Region: os.Getenv(EnvRegion)}
	if o.Endpoint == "" {
		o.Endpoint = os.Getenv(EnvEndpoint)
	}
	if o.Region == "" {
		o.Region = os.Getenv(EnvDefaultRegion)
	}
	if o.Region == "" {
		o.Region = configRegion()
	}
	switch strings.ToLower(os.Getenv(EnvPathStyle)) {
	case "1", "true", "yes":
		o.PathStyle = true
	}
	return o
}

// S3 is a bucket and key prefix holding sets: set NAME is the objects
// under PREFIX/NAME/, and it exists once PREFIX/NAME/manifest.json does,
// which is put only after every other object of the set was uploaded
// whole. Objects are streamed up in parts of PartSize, one part in memory.
type S3 struct {
	c       *minio.Client
	bucket  string
	prefix  string // no leading or trailing slash; may be empty
	partSz  uint64
	partAge time.Duration
}

// active are the sets this process is writing, never taken as abandoned.
var active sync.Map

// NewS3 is the target s3://bucket/prefix.
func NewS3(bucket, prefix string, o S3Options) (*S3, error) {
	endpoint, secure := "s3.amazonaws.com", true
	if o.Endpoint != "" {
		e := o.Endpoint
		if !strings.Contains(e, "://") {
			e = "https://" + e
		}
		u, err := url.Parse(e)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") || (u.Path != "" && u.Path != "/") {
			return nil, fmt.Errorf("%w: S3 endpoint %q: want http(s)://host[:port]", ErrBadLocation, o.Endpoint)
		}
		endpoint, secure = u.Host, u.Scheme == "https"
	}
	creds := o.Creds
	if creds == nil {
		creds = credentials.NewChainCredentials([]credentials.Provider{
			&credentials.EnvAWS{},
			&credentials.FileAWSCredentials{},
			&credentials.IAM{},
		})
	}
	lookup := minio.BucketLookupAuto
	if o.PathStyle {
		lookup = minio.BucketLookupPath
	}
	c, err := minio.New(endpoint, &minio.Options{Creds: creds, Secure: secure, Region: o.Region, BucketLookup: lookup})
	if err != nil {
		return nil, fmt.Errorf("S3 client for %s: %w", endpoint, err)
	}
	t := &S3{c: c, bucket: bucket, prefix: strings.Trim(prefix, "/"), partSz: o.PartSize, partAge: o.PartialAge}
	if t.partSz == 0 {
		t.partSz = DefaultPartSize
	}
	if t.partAge == 0 {
		t.partAge = DefaultPartialAge
	}
	return t, nil
}

// Client is the S3 client, for tests and tools.
func (t *S3) Client() *minio.Client { return t.c }

// Bucket and Prefix say where the sets are.
func (t *S3) Bucket() string { return t.bucket }
func (t *S3) Prefix() string { return t.prefix }

func (t *S3) String() string {
	if t.prefix == "" {
		return "s3://" + t.bucket
	}
	return "s3://" + t.bucket + "/" + t.prefix
}

func (t *S3) SetLocation(name string) string { return t.String() + "/" + name }

// setKey is the key prefix of a set's objects, with its trailing slash.
func (t *S3) setKey(name string) string {
	if t.prefix == "" {
		return name + "/"
	}
	return t.prefix + "/" + name + "/"
}

// listPrefix is the prefix every set's keys start with.
func (t *S3) listPrefix() string {
	if t.prefix == "" {
		return ""
	}
	return t.prefix + "/"
}

func (t *S3) activeKey(name string) string { return t.bucket + "/" + t.setKey(name) }

// isNotFound says whether an S3 error says the key or bucket is not there.
func isNotFound(err error) bool {
	switch minio.ToErrorResponse(err).Code {
	case minio.NoSuchKey, minio.NoSuchBucket, "NotFound":
		return true
	}
	return false
}

// scan lists every object under the target: per set name, whether it
// holds a manifest and its last modification.
type scanned struct {
	manifest bool
	objects  int
	modified time.Time
	// unknown says why its activity could not be told.
	unknown string
}

func (t *S3) scan(ctx context.Context) (map[string]*scanned, error) {
	out := map[string]*scanned{}
	base := t.listPrefix()
	for o := range t.c.ListObjects(ctx, t.bucket, minio.ListObjectsOptions{Prefix: base, Recursive: true}) {
		if o.Err != nil {
			return nil, fmt.Errorf("list backups in %s: %w", t, o.Err)
		}
		rel := strings.TrimPrefix(o.Key, base)
		name, rest, ok := strings.Cut(rel, "/")
		if !ok || checkSetName(name) != nil {
			continue
		}
		s := out[name]
		if s == nil {
			s = &scanned{}
			out[name] = s
		}
		s.objects++
		if rest == ManifestName {
			s.manifest = true
		}
		if o.LastModified.After(s.modified) {
			s.modified = o.LastModified
		}
	}
	return out, nil
}

// Sets lists the prefixes that hold a manifest.
func (t *S3) Sets(ctx context.Context) ([]string, error) {
	all, err := t.scan(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for name, s := range all {
		if s.manifest {
			out = append(out, name)
		}
	}
	return out, nil
}

// Begin refuses a name under which anything is stored already, and
// removes the abandoned partial sets it finds.
func (t *S3) Begin(ctx context.Context, name string) (SetWriter, error) {
	if err := checkSetName(name); err != nil {
		return nil, err
	}
	if ok, err := t.c.BucketExists(ctx, t.bucket); err != nil {
		return nil, fmt.Errorf("backup target %s: %w", t, err)
	} else if !ok {
		return nil, fmt.Errorf("backup target %s: bucket %s: %w", t, t.bucket, ErrNotFound)
	}
	if ps, err := t.Partials(ctx); err == nil {
		for _, p := range ps {
			if p.Abandoned {
				t.RemovePartial(ctx, p)
			}
		}
	}
	key := t.setKey(name)
	// The listings stop at their first answer; cancelling ends their
	// producers.
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if o, ok := <-t.c.ListObjects(lctx, t.bucket, minio.ListObjectsOptions{Prefix: key, Recursive: true, MaxKeys: 1}); ok {
		if o.Err != nil {
			return nil, fmt.Errorf("backup target %s: %w", t, o.Err)
		}
		return nil, fmt.Errorf("backup set %s: %w", t.SetLocation(name), ErrExists)
	}
	for u := range t.c.ListIncompleteUploads(lctx, t.bucket, key, true) {
		if u.Err == nil {
			// An upload of a killed backup of the same name: the set
			// would hide it.
			return nil, fmt.Errorf("backup set %s: an unfinished upload is there: %w", t.SetLocation(name), ErrExists)
		}
	}
	if _, loaded := active.LoadOrStore(t.activeKey(name), true); loaded {
		return nil, fmt.Errorf("backup set %s: %w", t.SetLocation(name), ErrExists)
	}
	return &s3Writer{t: t, ctx: ctx, name: name}, nil
}

type s3Writer struct {
	t    *S3
	ctx  context.Context
	name string
	open []*s3Object
}

func (w *s3Writer) Location() string { return w.t.SetLocation(w.name) }

// Create streams an object up through a pipe: PutObject reads it in parts
// of the target's part size, with the size unknown.
func (w *s3Writer) Create(name string) (Object, error) {
	if err := checkObjectName(name); err != nil {
		return nil, err
	}
	if name == ManifestName {
		return nil, fmt.Errorf("%w: %s is written by Commit", ErrUnsafe, name)
	}
	ctx, cancel := context.WithCancel(w.ctx)
	pr, pw := io.Pipe()
	o := &s3Object{pw: pw, cancel: cancel, done: make(chan error, 1)}
	key := w.t.setKey(w.name) + name
	go func() {
		_, err := w.t.c.PutObject(ctx, w.t.bucket, key, pr, -1, minio.PutObjectOptions{
			PartSize: w.t.partSz, ContentType: "application/octet-stream"})
		pr.CloseWithError(err) // unblocks a writer if the upload failed
		o.done <- err
	}()
	w.open = append(w.open, o)
	return o, nil
}

// errAborted ends an upload that is abandoned.
var errAborted = errors.New("upload aborted")

type s3Object struct {
	pw     *io.PipeWriter
	cancel context.CancelFunc
	done   chan error
	err    error
	ended  bool
}

func (o *s3Object) Write(p []byte) (int, error) { return o.pw.Write(p) }

func (o *s3Object) wait() error {
	if !o.ended {
		o.err, o.ended = <-o.done, true
		o.cancel()
	}
	return o.err
}

// Commit ends the stream and waits for the last part and the upload's
// completion.
func (o *s3Object) Commit() error {
	o.pw.Close()
	if err := o.wait(); err != nil {
		return fmt.Errorf("upload: %w", err)
	}
	return nil
}

// Abort fails the upload, which the client then aborts on the store.
func (o *s3Object) Abort() {
	o.pw.CloseWithError(errAborted)
	o.wait()
}

// Commit puts the manifest: from now on the set is visible.
func (w *s3Writer) Commit(manifest []byte) error {
	defer active.Delete(w.t.activeKey(w.name))
	for _, o := range w.open {
		if !o.ended {
			return fmt.Errorf("make backup set visible: an object is still being uploaded")
		}
		if o.err != nil {
			return fmt.Errorf("make backup set visible: an object failed to upload: %w", o.err)
		}
	}
	_, err := w.t.c.PutObject(w.ctx, w.t.bucket, w.t.setKey(w.name)+ManifestName, bytes.NewReader(manifest), int64(len(manifest)),
		minio.PutObjectOptions{ContentType: "application/json"})
	if err != nil {
		return fmt.Errorf("make backup set visible: put %s: %w", ManifestName, err)
	}
	return nil
}

// Abort stops every upload and removes what was stored.
func (w *s3Writer) Abort() error {
	defer active.Delete(w.t.activeKey(w.name))
	for _, o := range w.open {
		if !o.ended {
			o.Abort()
		}
	}
	return w.t.removeAll(context.WithoutCancel(w.ctx), w.name, false)
}

// removeAll deletes every object of a set, the manifest first when
// manifestFirst, and aborts its unfinished uploads.
func (t *S3) removeAll(ctx context.Context, name string, manifestFirst bool) error {
	key := t.setKey(name)
	if manifestFirst {
		if err := t.c.RemoveObject(ctx, t.bucket, key+ManifestName, minio.RemoveObjectOptions{}); err != nil {
			return fmt.Errorf("remove backup set %s: %w", t.SetLocation(name), err)
		}
	}
	var firstErr error
	for o := range t.c.ListObjects(ctx, t.bucket, minio.ListObjectsOptions{Prefix: key, Recursive: true}) {
		if o.Err != nil {
			return fmt.Errorf("remove backup set %s: %w", t.SetLocation(name), o.Err)
		}
		if err := t.c.RemoveObject(ctx, t.bucket, o.Key, minio.RemoveObjectOptions{}); err != nil && firstErr == nil {
			firstErr = fmt.Errorf("remove backup set %s: %s: %w", t.SetLocation(name), o.Key, err)
		}
	}
	for u := range t.c.ListIncompleteUploads(ctx, t.bucket, key, true) {
		if u.Err != nil {
			break // not every store lists them; nothing is visible of them
		}
		if err := (minio.Core{Client: t.c}).AbortMultipartUpload(ctx, t.bucket, u.Key, u.UploadID); err != nil && firstErr == nil {
			firstErr = fmt.Errorf("remove backup set %s: abort the upload of %s: %w", t.SetLocation(name), u.Key, err)
		}
	}
	return firstErr
}

// Remove deletes the manifest first (the set is gone at once), then the
// rest. Interrupted, what is left is a prefix without a manifest, which a
// later cleanup of partial sets removes.
func (t *S3) Remove(ctx context.Context, name string) error {
	if err := checkSetName(name); err != nil {
		return err
	}
	if _, err := t.c.StatObject(ctx, t.bucket, t.setKey(name)+ManifestName, minio.StatObjectOptions{}); err != nil {
		if isNotFound(err) {
			return fmt.Errorf("remove backup set %s: %w", t.SetLocation(name), ErrNotFound)
		}
		return fmt.Errorf("remove backup set %s: %w", t.SetLocation(name), err)
	}
	return t.removeAll(ctx, name, true)
}

// Partials lists the prefixes without a manifest and the unfinished
// multipart uploads of sets without one. One is abandoned when this
// process does not write it and nothing happened to it for PartialAge:
// no object put, no upload begun, and no part of an unfinished upload
// uploaded (an upload is aged by its newest part, not by its start, so a
// long upload that goes on is never taken for an abandoned one). When the
// parts of an upload cannot be listed, its set is not taken as abandoned.
func (t *S3) Partials(ctx context.Context) ([]Partial, error) {
	all, err := t.scan(ctx)
	if err != nil {
		return nil, err
	}
	for u := range t.c.ListIncompleteUploads(ctx, t.bucket, t.listPrefix(), true) {
		if u.Err != nil {
			break // not every store lists them
		}
		name, _, ok := strings.Cut(strings.TrimPrefix(u.Key, t.listPrefix()), "/")
		if !ok || checkSetName(name) != nil {
			continue
		}
		s := all[name]
		if s == nil {
			s = &scanned{}
			all[name] = s
		}
		if s.manifest {
			continue
		}
		latest := u.Initiated
		part, err := t.newestPart(ctx, u.Key, u.UploadID)
		if err != nil {
			s.unknown = fmt.Sprintf("the parts of the upload of %s could not be listed: %v", u.Key, err)
		}
		if part.After(latest) {
			latest = part
		}
		if latest.After(s.modified) {
			s.modified = latest
		}
	}
	var out []Partial
	for name, s := range all {
		if s.manifest {
			continue
		}
		p := Partial{Name: name, ID: name, Modified: s.modified.UTC()}
		age := time.Since(s.modified)
		switch _, ours := active.Load(t.activeKey(name)); {
		case ours:
			p.Why = "this process writes it"
		case s.unknown != "":
			p.Why = s.unknown
		case age < t.partAge:
			p.Why = fmt.Sprintf("last written %v ago, less than %v", age.Round(time.Second), t.partAge)
		default:
			p.Abandoned, p.Why = true, fmt.Sprintf("nothing written for %v", age.Round(time.Second))
		}
		out = append(out, p)
	}
	return out, nil
}

// newestPart is when the newest part of an unfinished upload was
// uploaded (zero when none was).
func (t *S3) newestPart(ctx context.Context, key, uploadID string) (time.Time, error) {
	var newest time.Time
	marker := 0
	for {
		res, err := (minio.Core{Client: t.c}).ListObjectParts(ctx, t.bucket, key, uploadID, marker, 1000)
		if err != nil {
			return newest, err
		}
		for _, p := range res.ObjectParts {
			if p.LastModified.After(newest) {
				newest = p.LastModified
			}
		}
		if !res.IsTruncated || res.NextPartNumberMarker <= marker {
			return newest, nil
		}
		marker = res.NextPartNumberMarker
	}
}

// RemovePartial deletes what an incomplete set left, unless it got a
// manifest in the meantime.
func (t *S3) RemovePartial(ctx context.Context, p Partial) error {
	if err := checkSetName(p.ID); err != nil {
		return err
	}
	if _, err := t.c.StatObject(ctx, t.bucket, t.setKey(p.ID)+ManifestName, minio.StatObjectOptions{}); err == nil {
		return fmt.Errorf("remove partial backup set %s: it is complete now: %w", t.SetLocation(p.ID), ErrExists)
	}
	return t.removeAll(ctx, p.ID, false)
}

// Open opens a set for reading; nothing is asked of the store yet.
func (t *S3) Open(ctx context.Context, name string) (SetReader, error) {
	if err := checkSetName(name); err != nil {
		return nil, err
	}
	return &s3Reader{t: t, ctx: ctx, name: name}, nil
}

type s3Reader struct {
	t    *S3
	ctx  context.Context
	name string
}

func (r *s3Reader) Location() string { return r.t.SetLocation(r.name) }

func (r *s3Reader) ReadManifest() ([]byte, error) {
	o, err := r.Open(ManifestName)
	if err != nil {
		return nil, err
	}
	defer o.Close()
	b, err := io.ReadAll(io.LimitReader(o, maxManifest+1))
	if err == nil && len(b) > maxManifest {
		err = fmt.Errorf("%s is over %d bytes", ManifestName, maxManifest)
	}
	return b, err
}

// Open streams an object: it is fetched as it is read.
func (r *s3Reader) Open(name string) (io.ReadCloser, error) {
	if err := checkObjectName(name); err != nil {
		return nil, err
	}
	key := r.t.setKey(r.name) + name
	o, err := r.t.c.GetObject(r.ctx, r.t.bucket, key, minio.GetObjectOptions{})
	if err == nil {
		_, err = o.Stat()
	}
	if err != nil {
		if o != nil {
			o.Close()
		}
		if isNotFound(err) {
			return nil, fmt.Errorf("%w: %s", ErrNotFound, path.Join(r.Location(), name))
		}
		return nil, fmt.Errorf("read %s: %w", path.Join(r.Location(), name), err)
	}
	return o, nil
}

func (r *s3Reader) List() ([]Entry, error) {
	key := r.t.setKey(r.name)
	var out []Entry
	for o := range r.t.c.ListObjects(r.ctx, r.t.bucket, minio.ListObjectsOptions{Prefix: key, Recursive: true}) {
		if o.Err != nil {
			return nil, fmt.Errorf("list %s: %w", r.Location(), o.Err)
		}
		rel := strings.TrimPrefix(o.Key, key)
		out = append(out, Entry{Name: rel, Regular: !strings.HasSuffix(rel, "/")})
	}
	return out, nil
}
