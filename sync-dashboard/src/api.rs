//! The JSON API: the data of every page (see the README's Dashboard
//! section). Errors are `{"error": ..., "status": ...}`.

use axum::extract::{Path, Query, State};
use axum::response::Json;

use crate::data::{self, Calendar, DayPage, Live, RunDetail, RunsPage, StreamView};
use crate::error::ApiError;
use crate::Dashboard;

type Params = Query<Vec<(String, String)>>;

/// `GET /api/streams`.
pub(crate) async fn streams(State(d): State<Dashboard>) -> Result<Json<Vec<StreamView>>, ApiError> {
    Ok(Json(data::streams(&d).await?))
}

/// `GET /api/streams/{stream}/calendar?year=`.
pub(crate) async fn calendar(
    State(d): State<Dashboard>,
    Path(stream): Path<String>,
    Query(query): Params,
) -> Result<Json<Calendar>, ApiError> {
    let year = data::year_param(&query)?;
    let id = data::stream_param(&stream)?;
    Ok(Json(data::calendar(&d, &id, year).await?))
}

/// `GET /api/streams/{stream}/days/{date}?page=`.
pub(crate) async fn day(
    State(d): State<Dashboard>,
    Path((stream, date)): Path<(String, String)>,
    Query(query): Params,
) -> Result<Json<DayPage>, ApiError> {
    let page = data::page_param(&query, data::MAX_PAGE)?;
    let id = data::stream_param(&stream)?;
    let date = data::day_param(&date)?;
    Ok(Json(data::day(&d, &id, date, page).await?))
}

/// `GET /api/runs?page=`.
pub(crate) async fn runs(
    State(d): State<Dashboard>,
    Query(query): Params,
) -> Result<Json<RunsPage>, ApiError> {
    let page = data::page_param(&query, data::MAX_PAGE)?;
    Ok(Json(data::runs_page(&d, page).await?))
}

/// `GET /api/runs/{id}?page=`.
pub(crate) async fn run(
    State(d): State<Dashboard>,
    Path(id): Path<String>,
    Query(query): Params,
) -> Result<Json<RunDetail>, ApiError> {
    let page = data::page_param(&query, data::MAX_CHANGES_PAGE)?;
    Ok(Json(data::run_detail(&d, &id, page).await?))
}

/// `GET /api/live`.
pub(crate) async fn live(State(d): State<Dashboard>) -> Result<Json<Live>, ApiError> {
    Ok(Json(data::live(&d).await?))
}
