package registry

import (
	"context"
	"errors"
	"fmt"

	"github.com/hamba/avro/v2"

	"github.com/handoffhq/handoff/schema"
)

// avroSchema returns schema id compiled by hamba/avro, its references
// parsed first. Cached per id.
func (c *Client) avroSchema(ctx context.Context, id int) (avro.Schema, error) {
	k := derivedKey{id, "avro"}
	if v, ok := c.derived.get(k); ok {
		return v.(avro.Schema), nil
	}
	r, err := c.SchemaByID(ctx, id)
	if err != nil {
		return nil, err
	}
	if t, err := schema.ParseType(r.SchemaType); err != nil || t != schema.Avro {
		return nil, fmt.Errorf("schema %d is %s, not AVRO", id, r.SchemaType)
	}
	refs, err := c.resolveRefs(ctx, r.References)
	if err != nil {
		return nil, err
	}
	s, err := parseAvro(r.Schema, refs)
	if err != nil {
		return nil, fmt.Errorf("schema %d: %w", id, err)
	}
	c.derived.put(k, s)
	return s, nil
}

// parseAvro compiles an Avro schema whose named types may come from refs
// (dependencies first). Each schema gets its own name cache: hamba's
// default cache is global, and two versions of one record would collide
// there.
func parseAvro(text string, refs []resolvedRef) (avro.Schema, error) {
	cache := &avro.SchemaCache{}
	for _, r := range refs {
		if _, err := avro.ParseWithCache(r.text, "", cache); err != nil {
			return nil, fmt.Errorf("avro reference %q: %w", r.name, err)
		}
	}
	s, err := avro.ParseWithCache(text, "", cache)
	if err != nil {
		return nil, fmt.Errorf("avro schema: %w", err)
	}
	return s, nil
}

func (s *Serializer) encodeAvro(ctx context.Context, id int, v any) ([]byte, error) {
	sch, err := s.c.avroSchema(ctx, id)
	if err != nil {
		return nil, err
	}
	b, err := avro.Marshal(sch, v)
	if err != nil {
		return nil, &schema.ValidationError{Rule: "avro", Reason: err.Error()}
	}
	return b, nil
}

func (d *Deserializer) decodeAvro(ctx context.Context, id int, payload []byte, v any) error {
	sch, err := d.c.avroSchema(ctx, id)
	if err != nil {
		return err
	}
	if d.cfg.reader != nil {
		if sch, err = d.avroResolved(ctx, id, sch); err != nil {
			return err
		}
	}
	if err := avro.Unmarshal(sch, payload, v); err != nil {
		return &schema.ValidationError{Rule: "avro", Reason: err.Error()}
	}
	return nil
}

// avroResolved returns the writer schema resolved to the reader schema:
// what reads the writer's bytes into the reader's shape. Cached per writer.
func (d *Deserializer) avroResolved(ctx context.Context, id int, writer avro.Schema) (avro.Schema, error) {
	d.mu.Lock()
	r, reader := d.resolved[id], d.reader
	d.mu.Unlock()
	if r != nil {
		return r.(avro.Schema), nil
	}
	if reader == nil {
		refs, err := d.c.resolveRefs(ctx, d.cfg.reader.References)
		if err != nil {
			return nil, fmt.Errorf("reader schema: %w", err)
		}
		s, err := parseAvro(d.cfg.reader.Text, refs)
		if err != nil {
			return nil, fmt.Errorf("reader schema: %w", err)
		}
		reader = s
	}
	res, err := avro.NewSchemaCompatibility().Resolve(reader.(avro.Schema), writer)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("reader schema cannot read what schema %d wrote", id), err)
	}
	d.mu.Lock()
	d.reader, d.resolved[id] = reader, res
	d.mu.Unlock()
	return res, nil
}
