// The public API in one include: `#include <plinth/plinth.h>` for an installed plinth
// (find_package(plinth) + plinth::plinth), "engine/plinth.h" inside the source tree.
#pragma once

#include "datasets/data_source.h"
#include "datasets/dataset.h"
#include "engine/checkpoint.h"
#include "engine/device_select.h"
#include "engine/error.h"
#include "engine/metrics.h"
#include "engine/model.h"
#include "engine/parameters.h"
#include "engine/progress.h"
#include "engine/sequential.h"
#include "engine/stopping.h"
#include "engine/train_hook.h"
#include "engine/trainer.h"
