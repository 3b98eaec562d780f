/*
 * routes.h - the route tables of the API's resources (one per file),
 * gathered by api.c into api_routes().  Each ends with a NULL method.
 */
#ifndef HERALD_API_ROUTES_H
#define HERALD_API_ROUTES_H

#include "api/api.h"

extern const struct api_route api_meta_routes[];
extern const struct api_route api_lists_routes[];
extern const struct api_route api_fields_routes[];
extern const struct api_route api_contacts_routes[];
extern const struct api_route api_segments_routes[];
extern const struct api_route api_suppressions_routes[];
extern const struct api_route api_imports_routes[];
extern const struct api_route api_exports_routes[];
extern const struct api_route api_accounts_routes[];

#endif
