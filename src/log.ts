import pino, { type Logger } from 'pino';

/**
 * One JSON line per event. Bodies are never logged (they hold tensors and images); the authorization
 * header is redacted should a request's headers ever be logged.
 */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      name: 'edge-infer',
      level,
      redact: ['req.headers.authorization', 'headers.authorization'],
    },
    destination,
  );
}
