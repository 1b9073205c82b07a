// The public API in one include: `#include <plinth/plinth.h>` for an installed plinth
// (find_package(plinth) + plinth::plinth), "engine/plinth.h" inside the source tree.
#pragma once

#include "datasets/dataset.h"
#include "engine/checkpoint.h"
#include "engine/device_select.h"
#include "engine/early_stopping.h"
#include "engine/error.h"
#include "engine/model.h"
#include "engine/parameters.h"
#include "engine/sequential.h"
#include "engine/trainer.h"
