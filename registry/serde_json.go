package registry

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/handoffhq/handoff/schema"
)

// jsonSchema returns schema id parsed, checking that it is a JSON Schema.
func (c *Client) jsonSchema(ctx context.Context, id int) (*schema.Parsed, error) {
	p, err := c.ParsedByID(ctx, id)
	if err != nil {
		return nil, err
	}
	if p.Type() != schema.JSON {
		return nil, fmt.Errorf("schema %d is %s, not JSON", id, p.Type())
	}
	return p, nil
}

func (s *Serializer) encodeJSON(ctx context.Context, id int, v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	if s.cfg.validate {
		p, err := s.c.jsonSchema(ctx, id)
		if err != nil {
			return nil, err
		}
		if err := p.Validate(b); err != nil {
			return nil, err
		}
	}
	return b, nil
}

func (d *Deserializer) decodeJSON(ctx context.Context, id int, payload []byte, v any) error {
	if d.cfg.validate {
		p, err := d.c.jsonSchema(ctx, id)
		if err != nil {
			return err
		}
		if err := p.Validate(payload); err != nil {
			return err
		}
	}
	return json.Unmarshal(payload, v)
}
